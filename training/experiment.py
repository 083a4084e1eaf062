"""Controlled-sentiment experiment: a small replication of the DPO paper's first experiment.

Rafailov et al. (2023, sec. 6.1) sample completions from a base model, label pairs with a
sentiment classifier and show that DPO raises the classifier's reward. Here the classifier is a
lexicon over the words the Python docs actually use (positive: "useful", "simple", "valid", ...;
negative: "error", "exception", "fails", ...), so the rule is transparent and free:
    sentiment(text) = #positive words - #negative words;  property: sentiment(text) > 0.
Pairs are on-policy: K samples per prompt from the parent, chosen = highest sentiment,
rejected = lowest, ties skipped. Held-out pairs come from held-out prompts.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.bootstrap import corpus_documents, split_documents
from training.config import (
    BootstrapConfig,
    DPOTrainConfig,
    EvalConfig,
    GenerateConfig,
    RewardTrainConfig,
)
from training.lexicon import is_positive, sentiment
from training.progress import Progress


def corpus_prompts(n: int, seed: int, heldout: bool, words: int = 5) -> list[str]:
    """`n` prompts of `words` words taken at random from training or held-out documentation."""
    train_docs, heldout_docs = split_documents(corpus_documents(), 10)
    docs = heldout_docs if heldout else train_docs
    tokens = [w for doc in docs for w in doc.split() if w.isascii()]
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        start = rng.randrange(0, len(tokens) - words)
        prompts.append(" ".join(tokens[start : start + words]))
    return prompts


def on_policy_pairs(
    prompts: list[str], samples: list[list[Any]], judge: Any = sentiment
) -> list[dict[str, str]]:
    """Best vs worst sample of each prompt by `judge(text)`; prompts whose samples tie are skipped.

    Completions keep their leading space (the token boundary after the prompt).
    """
    pairs = []
    for prompt, row in zip(prompts, samples, strict=True):
        texts = [s.text for s in row if s.text.strip()]
        if len(texts) < 2:
            continue
        scored = sorted(texts, key=judge)
        worst, best = scored[0], scored[-1]
        if judge(best) > judge(worst):
            pairs.append({"prompt": prompt, "chosen": best, "rejected": worst})
    return pairs


@dataclass
class ExperimentConfig:
    """Sizes of the sentiment experiment; `quick()` fits the test suite's budget."""

    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    train_prompts: int = 512
    test_prompts: int = 128
    samples_per_prompt: int = 8
    max_new_tokens: int = 24
    reward: RewardTrainConfig = field(
        default_factory=lambda: RewardTrainConfig(learning_rate=1e-3, epochs=3, batch_size=16)
    )
    dpo: DPOTrainConfig = field(
        default_factory=lambda: DPOTrainConfig(
            learning_rate=5e-4, epochs=3, batch_size=16, beta=0.1
        )
    )
    eval_samples_per_prompt: int = 4
    seed: int = 0

    @classmethod
    def quick(cls) -> ExperimentConfig:
        return cls(bootstrap=BootstrapConfig.small())


def run_sentiment_experiment(
    work_dir: str | Path,
    config: ExperimentConfig | None = None,
    base_model: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Bootstrap (cached), sample, label pairs, train RM + DPO, evaluate; returns the table."""
    from training.bootstrap import bootstrap_base_model
    from training.dpo import train_dpo
    from training.evaluate import (
        compare_policies,
        preference_accuracy_policy,
        preference_accuracy_reward,
    )
    from training.generate import generate
    from training.reward import RewardScorer, train_reward

    config = config or ExperimentConfig()
    work = Path(work_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    if base_model is None:
        base_model = bootstrap_base_model(work / "bootstrap", config.bootstrap).output_dir
    lap("bootstrap_s")
    sample_config = GenerateConfig(
        num_samples=config.samples_per_prompt,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        stop=("\n\n",),
    )
    train_prompts = corpus_prompts(config.train_prompts, config.seed, heldout=False)
    test_prompts = corpus_prompts(config.test_prompts, config.seed + 1, heldout=True)
    train_pairs = on_policy_pairs(
        train_prompts, generate(base_model, train_prompts, sample_config).samples
    )
    test_pairs = on_policy_pairs(
        test_prompts, generate(base_model, test_prompts, sample_config).samples
    )
    lap("sample_pairs_s")

    rm = train_reward(base_model, train_pairs, work / "reward", config.reward, progress)
    rm_acc = preference_accuracy_reward(rm.output_dir, test_pairs)
    lap("reward_s")
    dpo = train_dpo(base_model, train_pairs, work / "dpo", config.dpo, progress)
    dpo_acc = preference_accuracy_policy(
        dpo.output_dir,
        base_model,
        test_pairs,
        beta=config.dpo.beta,
        max_length=config.dpo.max_length,
    )
    lap("dpo_s")

    eval_config = EvalConfig(
        samples_per_prompt=config.eval_samples_per_prompt,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed + 7,
        stop=("\n\n",),
        beta=config.dpo.beta,
    )
    lexicon = compare_policies(
        dpo.output_dir,
        base_model,
        test_prompts,
        judge=lambda _p, t: sentiment(t),
        config=eval_config,
    )
    # The reward model judges the same samples (no second round of generation).
    scorer = RewardScorer(rm.output_dir)
    pol_rm = scorer.score_completions(lexicon["prompts"], lexicon["policy_samples"])
    par_rm = scorer.score_completions(lexicon["prompts"], lexicon["parent_samples"])
    rm_wins = [
        1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(pol_rm, par_rm, strict=True)
    ]
    lap("evaluate_s")

    def rate(texts: list[str]) -> float:
        return sum(is_positive(t) for t in texts) / len(texts)

    return {
        "base_model": base_model,
        "train_pairs": len(train_pairs),
        "test_pairs": len(test_pairs),
        "reward_model_heldout_accuracy": rm_acc["accuracy"],
        "dpo_implicit_heldout_accuracy": dpo_acc["accuracy"],
        "parent_positive_rate": rate(lexicon["parent_samples"]),
        "policy_positive_rate": rate(lexicon["policy_samples"]),
        "parent_mean_sentiment": lexicon["parent_mean_score"],
        "policy_mean_sentiment": lexicon["policy_mean_score"],
        "win_rate_lexicon_judge": lexicon["win_rate"],
        "win_rate_reward_model_judge": sum(rm_wins) / len(rm_wins),
        "kl_policy_parent_nats": lexicon["kl"],
        "eval_samples": lexicon["comparisons"],
        "reward_train_loss": rm.metrics["train_loss"],
        "dpo_train_loss": dpo.metrics["train_loss"],
        "dpo_first_loss": next((h["loss"] for h in dpo.history if "loss" in h), None),
        "dpo_last_loss": next((h["loss"] for h in reversed(dpo.history) if "loss" in h), None),
        "policy_examples": lexicon["policy_samples"][:3],
        "parent_examples": lexicon["parent_samples"][:3],
        **timings,
    }
