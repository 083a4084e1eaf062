"""Best-of-n rejection-sampling SFT: the reward model labels, SFT learns from the best.

For each prompt the policy samples `n` completions; the reward (one reward model, or the worst
case of an ensemble: `guards.EnsembleReward`) picks the best one; TRL's SFTTrainer fine-tunes
the policy on the kept (prompt, best completion) rows through `training.sft.train_sft`.
The rows it kept, with their rewards, are saved beside the checkpoint
(`best_of_n_rows.jsonl`), so the data the step used is on record.

Why: with few human labels a reward model trained on them can still rank many fresh samples,
and SFT on the best of n moves the policy towards the best-of-n policy without an RL loop,
whose KL to the start is at most log n - (n - 1) / n nats (Stiennon et al. 2020): a built-in
bound on how far the proxy can pull it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from training.checkpoint import write_run_files
from training.config import BestOfNSFTConfig, GenerateConfig, SFTTrainConfig
from training.data import validate_prompt_rows
from training.distributed import gather_in_order, rank_seed, shard
from training.engines import generate_with, generation_engine
from training.guards import EnsembleReward, reward_members
from training.models import ModelRef
from training.progress import Progress, report
from training.results import TrainResult
from training.sft import train_sft
from training.trl_cpu import TRL_PATCHES

ROWS_FILE = "best_of_n_rows.jsonl"


def best_of_n_kl_bound(n: int) -> float:
    """KL(best-of-n || policy) in nats for distinct samples: log n - (n - 1) / n."""
    return math.log(n) - (n - 1) / n


def reward_for(reward_model: Any, aggregate: str, std_k: float) -> EnsembleReward:
    """The reward of a path, a list of paths (an ensemble) or a reward callable."""
    return EnsembleReward(reward_members(reward_model), aggregate=aggregate, std_k=std_k)


def select_best(
    prompts: Sequence[Any], samples: Sequence[Sequence[str]], rewards: Sequence[Sequence[float]]
) -> list[dict[str, Any]]:
    """The highest-reward non-empty completion of each prompt (first on ties).

    >>> select_best(["p"], [[" a", " b", " "]], [[0.1, 0.7, 9.0]])
    [{'prompt': 'p', 'completion': ' b', 'reward': 0.7, 'candidates': 3}]
    """
    rows = []
    for prompt, texts, scores in zip(prompts, samples, rewards, strict=True):
        kept = [(s, t) for t, s in zip(texts, scores, strict=True) if t.strip()]
        if kept:
            score, text = max(kept, key=lambda st: st[0])
            rows.append(
                {"prompt": prompt, "completion": text, "reward": score, "candidates": len(texts)}
            )
    return rows


def train_best_of_n_sft(
    policy_model: ModelRef,
    reward_model: Any,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: BestOfNSFTConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
) -> TrainResult:
    """Sample `config.n` per prompt of `rows` ({"prompt": ...}) from `policy_model`, keep the
    reward-best, fine-tune `policy_model` on them; save a plain causal LM to `out_dir`.

    `reward_model`: a reward model directory, a list of them (reduced by
    `config.reward_aggregate`, the worst case by default) or a reward callable.
    """
    config = config or BestOfNSFTConfig()
    validate_prompt_rows(rows)
    engine = generation_engine()  # before any work: a required vLLM that cannot run refuses
    reward = reward_for(reward_model, config.reward_aggregate, config.reward_std_k)
    started = time.perf_counter()
    prompts = [r["prompt"] for r in rows]
    cancelled = False

    def sampling(step: int, total: int, metrics: dict) -> bool:
        nonlocal cancelled
        cancelled = cancelled or report(progress, 0, 0, {**metrics, "sampling_batch": step})
        return cancelled

    # Each rank samples and scores its share of the prompts; every rank then has them all.
    mine = shard(prompts)
    texts_mine: list[list[str]] = []
    if mine:
        sampled = generate_with(
            engine,
            policy_model,
            [p for _, p in mine],
            GenerateConfig(
                num_samples=config.n,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                top_p=config.top_p,
                seed=rank_seed(config.seed),
                batch_size=config.generate_batch_size,
            ),
            sampling,
        )
        texts_mine = [[s.text for s in row] for row in sampled.samples]
    flat_prompts = [p for (_, p), row in zip(mine, texts_mine, strict=True) for _ in row]
    flat_mine = reward.score(flat_prompts, [t for row in texts_mine for t in row])
    scored_mine, at = [], 0
    for (i, _), row in zip(mine, texts_mine, strict=True):
        scored_mine.append((i, (row, flat_mine[at : at + len(row)])))
        at += len(row)
    everyone = gather_in_order(scored_mine)
    texts = [row for row, _ in everyone]
    scores = [row_scores for _, row_scores in everyone]
    flat = [x for row_scores in scores for x in row_scores]
    selected = select_best(prompts, texts, scores)
    sampling_seconds = time.perf_counter() - started
    if len(selected) < 2:
        raise ValueError(f"rows: only {len(selected)} prompt(s) gave a non-empty sample")

    sft_config = SFTTrainConfig(
        **{k: v for k, v in config.to_dict().items() if k in SFTTrainConfig.__dataclass_fields__}
    )
    sft_rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in selected]
    result = train_sft(
        policy_model,
        sft_rows,
        out_dir,
        sft_config,
        (lambda s, t, m: True) if cancelled else progress,
        speedups=speedups,
    )
    metrics = dict(result.metrics)
    metrics.update(
        method="best_of_n_sft",
        generation_engine=engine.to_dict(),
        best_of_n={
            "n": config.n,
            "prompts": len(prompts),
            "rows": len(selected),
            "mean_reward_all": sum(flat) / len(flat) if flat else None,
            "mean_reward_best": sum(r["reward"] for r in selected) / len(selected),
            "kl_bound_nats": best_of_n_kl_bound(config.n),
            "reward": reward.describe(),
            "sampling_seconds": round(sampling_seconds, 3),
        },
    )
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # other ranks saved no model there
    with open(Path(out_dir, ROWS_FILE), "w") as fh:
        for r in selected:
            fh.write(json.dumps(r) + "\n")
    stopped = result.stopped or cancelled
    write_run_files(out_dir, config, metrics, result.history, stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=stopped, history=result.history
    )


__all__ = ["best_of_n_kl_bound", "select_best", "train_best_of_n_sft"]
