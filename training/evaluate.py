"""Held-out evaluation: pair accuracy of a reward model or a policy, win rate and KL.

- Reward model accuracy: fraction of pairs with r(x, y_w) > r(x, y_l).
- Policy accuracy: fraction with a positive implicit DPO reward margin
      beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))] > 0.
- Policy vs parent: one fresh sample from each per prompt (and per `samples_per_prompt`),
  judged by a reward model or a function; win = judge(policy) > judge(parent), a tie counts 1/2.
  KL(policy || parent) ~ mean over policy samples y of log pi(y|x) - log pi_parent(y|x), in nats
  per sequence (unbiased for temperature 1, top_p 1). The win rate comes with its 95 % Wilson
  interval (`training/stats.py`), so a gate can ask for its lower end, not the point estimate.
Ties count 1/2 everywhere, so an untrained policy scores exactly 0.5 rather than 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from training.config import EvalConfig
from training.data import Prompt, tokenize_pair, validate_pairs
from training.generate import GenerateResult, encode_prompts, generate
from training.guards import reward_scorer
from training.losses import batch_logps, completion_logps
from training.models import LoadedModel, ModelRef, load_causal_lm
from training.progress import Progress, report
from training.reward import RewardScorer
from training.stats import length_controlled_win_rate, length_ratio, wilson_interval

Judge = str | RewardScorer | Callable[[Prompt, str], float]


def _win(a: float, b: float) -> float:
    return 1.0 if a > b else 0.5 if a == b else 0.0


def preference_accuracy_reward(
    scorer: ModelRef | RewardScorer, pairs: Sequence[dict[str, Any]]
) -> dict[str, float]:
    """Accuracy and mean margin r(chosen) - r(rejected) of a reward model on `pairs`."""
    validate_pairs(pairs)
    if not isinstance(scorer, RewardScorer):
        scorer = reward_scorer(scorer)  # an ensemble's folder: its minimum
    chosen = scorer.score_completions([p["prompt"] for p in pairs], [p["chosen"] for p in pairs])
    rejected = scorer.score_completions(
        [p["prompt"] for p in pairs], [p["rejected"] for p in pairs]
    )
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {
        "accuracy": sum(_win(c, r) for c, r in zip(chosen, rejected, strict=True)) / len(pairs),
        "mean_margin": sum(margins) / len(margins),
        "pairs": len(pairs),
    }


@torch.inference_mode()
def pair_logps(
    loaded: LoadedModel, pairs: Sequence[dict[str, Any]], batch_size: int, max_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log pi(chosen|x), log pi(rejected|x) and completion lengths, tokenised as DPOTrainer does."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    collator = DataCollatorForPreference(
        pad_token_id=loaded.tokenizer.pad_token_id, max_length=max_length
    )
    device = next(loaded.model.parameters()).device
    examples = [tokenize_pair(loaded.tokenizer, p) for p in pairs]
    chosen, rejected, lengths = [], [], []
    for start in range(0, len(examples), batch_size):
        batch = collator(examples[start : start + batch_size])
        batch = {k: v.to(device) for k, v in batch.items()}
        c, r = batch_logps(loaded.model, batch)
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
        lengths.append(batch["completion_mask"].sum(dim=1).cpu())
    return torch.cat(chosen), torch.cat(rejected), torch.cat(lengths)


def preference_accuracy_policy(
    policy: ModelRef | LoadedModel,
    reference: ModelRef | LoadedModel,
    pairs: Sequence[dict[str, Any]],
    beta: float = 0.1,
    batch_size: int = 16,
    max_length: int = 256,
) -> dict[str, float]:
    """Accuracy and mean of the implicit DPO reward margin of `policy` against `reference`."""
    validate_pairs(pairs)
    pol, ref = load_causal_lm(policy), load_causal_lm(reference)
    pc, pr, _ = pair_logps(pol, pairs, batch_size, max_length)
    rc, rr, _ = pair_logps(ref, pairs, batch_size, max_length)
    margins = beta * ((pc - rc) - (pr - rr))
    acc = (margins > 0).float() + 0.5 * (margins == 0).float()
    return {
        "accuracy": float(acc.mean()),
        "mean_margin": float(margins.mean()),
        "pairs": len(pairs),
    }


@torch.inference_mode()
def sample_logps(
    loaded: LoadedModel,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    batch_size: int,
) -> list[float]:
    """log p(completion | prompt) for each row (right padded, prompt and padding masked)."""
    device = next(loaded.model.parameters()).device
    pad = loaded.tokenizer.pad_token_id
    out: list[float] = []
    for start in range(0, len(prompt_ids), batch_size):
        stop = start + batch_size
        rows = list(zip(prompt_ids[start:stop], completion_ids[start:stop], strict=True))
        width = max(len(p) + len(c) for p, c in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros_like(ids)
        completion = torch.zeros_like(ids)
        for i, (p, c) in enumerate(rows):
            ids[i, : len(p) + len(c)] = torch.tensor(p + c)
            attention[i, : len(p) + len(c)] = 1
            completion[i, len(p) : len(p) + len(c)] = 1
        logits = loaded.model(
            input_ids=ids.to(device), attention_mask=attention.to(device), use_cache=False
        ).logits
        out.extend(completion_logps(logits, ids.to(device), completion.to(device)).float().tolist())
    return out


def _judge_fn(judge: Judge) -> Callable[[list[Prompt], list[str]], list[float]]:
    if callable(judge) and not isinstance(judge, RewardScorer):
        return lambda prompts, texts: [
            float(judge(p, t)) for p, t in zip(prompts, texts, strict=True)
        ]
    # An ensemble's folder judges by its minimum (guards.reward_scorer).
    scorer = judge if isinstance(judge, RewardScorer) else reward_scorer(judge)
    return scorer.score_completions


def _flatten(prompts: Sequence[Prompt], result: GenerateResult) -> tuple[list[Prompt], list[Any]]:
    flat_prompts, flat_samples = [], []
    for prompt, row in zip(prompts, result.samples, strict=True):
        for sample in row:
            flat_prompts.append(prompt)
            flat_samples.append(sample)
    return flat_prompts, flat_samples


def compare_policies(
    policy: ModelRef | LoadedModel,
    parent: ModelRef | LoadedModel,
    prompts: Sequence[Prompt],
    judge: Judge,
    config: EvalConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Win rate of `policy` over `parent` on fresh samples, judge scores, and KL to the parent.

    `judge` is a reward model (path or `RewardScorer`) or a function (prompt, completion) ->
    score. Both models sample with the same seed and settings. Returns the samples too.
    """
    config = config or EvalConfig()
    prompts = list(prompts)
    gen_config = config.generate_config()
    pol, par = load_causal_lm(policy), load_causal_lm(parent)
    stopped = report(progress, 0, 4, {})
    pol_out = generate(pol, prompts, gen_config)
    stopped = stopped or report(progress, 1, 4, {})
    par_out = generate(par, prompts, gen_config)
    stopped = stopped or report(progress, 2, 4, {})

    score = _judge_fn(judge)
    flat_prompts, pol_samples = _flatten(prompts, pol_out)
    _, par_samples = _flatten(prompts, par_out)
    pol_scores = score(flat_prompts, [s.text for s in pol_samples])
    par_scores = score(flat_prompts, [s.text for s in par_samples])
    wins = [_win(a, b) for a, b in zip(pol_scores, par_scores, strict=True)]
    stopped = stopped or report(progress, 3, 4, {"win_rate": sum(wins) / len(wins)})

    kl: float | None = None
    kl_stderr: float | None = None
    if not stopped and pol.tokenizer.get_vocab() == par.tokenizer.get_vocab():
        encoded, _ = encode_prompts(pol.model, pol.tokenizer, prompts, config.max_new_tokens)
        per_prompt = {i: encoded[i] for i in range(len(prompts))}
        prompt_ids = [per_prompt[i] for i, row in enumerate(pol_out.samples) for _ in row]
        completion_ids = [s.completion_ids for s in pol_samples]
        lp_pol = sample_logps(pol, prompt_ids, completion_ids, config.batch_size)
        lp_par = sample_logps(par, prompt_ids, completion_ids, config.batch_size)
        diffs = [a - b for a, b in zip(lp_pol, lp_par, strict=True)]
        kl = sum(diffs) / len(diffs)
        # Its standard error: the estimate is a mean over samples, and a small KL estimated from
        # few samples may come out negative; pages show it as "kl ± 2 stderr".
        if len(diffs) > 1:
            var = sum((d - kl) ** 2 for d in diffs) / (len(diffs) - 1)
            kl_stderr = math.sqrt(var / len(diffs))
    report(
        progress,
        4,
        4,
        {"win_rate": sum(wins) / len(wins), "kl": kl if kl is not None else math.nan},
    )

    win_low, win_high = wilson_interval(sum(wins), len(wins))
    pol_len = [len(s.text.split()) for s in pol_samples]
    par_len = [len(s.text.split()) for s in par_samples]
    return {
        "length_ratio": length_ratio(pol_len, par_len),
        "lc_win_rate": length_controlled_win_rate(
            wins, [a - b for a, b in zip(pol_len, par_len, strict=True)]
        ),
        "win_rate": sum(wins) / len(wins),
        "win_rate_low": win_low,  # 95 % Wilson interval (ties count 1/2 of a win)
        "win_rate_high": win_high,
        "kl": kl,
        "kl_stderr": kl_stderr,
        "kl_unbiased": config.temperature == 1.0 and config.top_p == 1.0,
        "policy_mean_score": sum(pol_scores) / len(pol_scores),
        "parent_mean_score": sum(par_scores) / len(par_scores),
        "comparisons": len(wins),
        "policy_samples": [s.text for s in pol_samples],
        "parent_samples": [s.text for s in par_samples],
        "policy_scores": pol_scores,
        "parent_scores": par_scores,
        "prompts": flat_prompts,
        "settings": config.to_dict(),
        "stopped": stopped,
    }


__all__ = [
    "compare_policies",
    "pair_logps",
    "preference_accuracy_policy",
    "preference_accuracy_reward",
    "sample_logps",
]
