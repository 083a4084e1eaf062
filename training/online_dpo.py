"""Online (iterative) DPO: the policy samples, the reward ensemble labels, DPO trains.

Each iteration: the current policy samples `samples` completions per prompt; the reward (the
worst case of an ensemble by default, `guards.EnsembleReward`) labels the best against the
worst (pairs with a margin <= `min_margin` dropped); DPOTrainer (`training.dpo.train_dpo`)
trains the current policy, its own reference, on those pairs together with the human pairs.
The next iteration samples from the result (Xiong et al. 2024, iterative DPO with a reward
model as the labeller). Few human labels go further: they train the reward model, which then
labels many on-policy pairs, and stay in every iteration's data as the anchor.

The pairs each iteration used are saved beside the checkpoint (`online_dpo_pairs.jsonl`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from training.best_of_n import reward_for
from training.checkpoint import write_run_files
from training.config import DPOTrainConfig, GenerateConfig, OnlineDPOConfig
from training.data import validate_pairs, validate_prompt_rows
from training.distributed import (
    barrier,
    broadcast,
    gather_in_order,
    is_main,
    rank_seed,
    shard,
)
from training.dpo import train_dpo
from training.engines import EngineChoice, generate_with, generation_engine
from training.guards import EnsembleReward
from training.models import ModelRef
from training.progress import Progress, report
from training.results import TrainResult
from training.trl_cpu import TRL_PATCHES

PAIRS_FILE = "online_dpo_pairs.jsonl"


def reward_pairs(
    prompts: Sequence[Any],
    samples: Sequence[Sequence[str]],
    reward: EnsembleReward,
    min_margin: float,
) -> list[dict[str, Any]]:
    """Best against worst non-empty sample of each prompt by `reward`, margin > min_margin."""
    return [pair for _, pair in _indexed_reward_pairs(prompts, samples, reward, min_margin)]


def _indexed_reward_pairs(
    prompts: Sequence[Any],
    samples: Sequence[Sequence[str]],
    reward: EnsembleReward,
    min_margin: float,
) -> list[tuple[int, dict[str, Any]]]:
    """`reward_pairs` with the position of each pair's prompt in `prompts`."""
    flat_prompts = [p for p, row in zip(prompts, samples, strict=True) for _ in row]
    flat = reward.score(flat_prompts, [t for row in samples for t in row])
    pairs, at = [], 0
    for i, (prompt, row) in enumerate(zip(prompts, samples, strict=True)):
        scored = [(s, t) for s, t in zip(flat[at : at + len(row)], row, strict=True) if t.strip()]
        at += len(row)
        if len(scored) < 2:
            continue
        scored.sort(key=lambda st: st[0])
        (low, worst), (high, best) = scored[0], scored[-1]
        if high - low > min_margin:
            pair = {
                "prompt": prompt,
                "chosen": best,
                "rejected": worst,
                "reward_chosen": high,
                "reward_rejected": low,
            }
            pairs.append((i, pair))
    return pairs


def label_own_samples(
    engine: EngineChoice,
    model: ModelRef,
    prompts: Sequence[Any],
    reward: EnsembleReward,
    config: OnlineDPOConfig,
    seed: int,
) -> list[dict[str, Any]]:
    """Sample `model` on this rank's share of `prompts` and label them by `reward`; every
    rank's pairs on every rank, in prompt order (one process: all prompts, seeded `seed`)."""
    mine = shard(prompts)
    labelled: list[tuple[int, dict[str, Any]]] = []
    if mine:
        sampled = generate_with(
            engine,
            model,
            [p for _, p in mine],
            GenerateConfig(
                num_samples=config.samples,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                top_p=config.top_p,
                seed=rank_seed(seed),
                batch_size=config.generate_batch_size,
            ),
        )
        texts = [[s.text for s in row] for row in sampled.samples]
        shard_prompts = [p for _, p in mine]
        for at, pair in _indexed_reward_pairs(shard_prompts, texts, reward, config.min_margin):
            labelled.append((mine[at][0], pair))
    return gather_in_order(labelled)


def train_online_dpo(
    policy_model: ModelRef,
    reward_model: Any,
    rows: Sequence[dict[str, Any]],
    human_pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: OnlineDPOConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
) -> TrainResult:
    """`config.iterations` rounds of sample -> label by reward -> DPO with `human_pairs`, from
    `policy_model` on prompt `rows`; saves the last policy (a plain causal LM) to `out_dir`.

    `reward_model`: a reward model directory, a list of them (an ensemble, reduced by
    `config.reward_aggregate`) or a reward callable. `human_pairs` may be empty.
    """
    config = config or OnlineDPOConfig()
    validate_prompt_rows(rows)
    engine = generation_engine()  # before any work: a required vLLM that cannot run refuses
    if human_pairs:
        validate_pairs(human_pairs)
    reward = reward_for(reward_model, config.reward_aggregate, config.reward_std_k)
    dpo_config = DPOTrainConfig(
        **{k: v for k, v in config.to_dict().items() if k in DPOTrainConfig.__dataclass_fields__}
    )
    prompts = [r["prompt"] for r in rows]
    human = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in human_pairs]
    started = time.perf_counter()
    iterations: list[dict[str, Any]] = []
    history: list[dict[str, float]] = []
    used: list[dict[str, Any]] = []
    stopped = False
    current: str = str(policy_model)
    # Intermediate policies: rank 0 writes them, every rank reads them, so all ranks use rank
    # 0's scratch directory (one machine: torchrun --standalone).
    scratch = broadcast(tempfile.mkdtemp(prefix="online-dpo-") if is_main() else "")
    try:
        for it in range(config.iterations):
            last = it == config.iterations - 1
            target = Path(out_dir) if last else Path(scratch, f"iteration-{it}")
            clock = time.perf_counter()
            generated = label_own_samples(
                engine, current, prompts, reward, config, config.seed + it
            )
            sampling_s = time.perf_counter() - clock
            pairs = human + [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in generated]
            if len(pairs) < 1:
                raise ValueError(f"rows: iteration {it} labelled no pair and no human pairs given")

            def step_progress(step: int, total: int, metrics: dict, _it: int = it) -> bool:
                overall = total * config.iterations
                return report(progress, _it * total + step, overall, {**metrics, "iteration": _it})

            result = train_dpo(current, pairs, target, dpo_config, step_progress, speedups=speedups)
            history.extend({**h, "iteration": float(it)} for h in result.history)
            used.extend({**p, "iteration": it, "source": "policy"} for p in generated)
            iterations.append(
                {
                    "iteration": it,
                    "generated_pairs": len(generated),
                    "human_pairs": len(human),
                    "mean_reward_chosen": _mean([p["reward_chosen"] for p in generated]),
                    "mean_reward_rejected": _mean([p["reward_rejected"] for p in generated]),
                    "sampling_seconds": round(sampling_s, 3),
                    "setup_seconds": result.metrics["setup_seconds"],
                    "train_seconds": result.metrics["train_seconds"],
                    "train_loss": result.metrics["train_loss"],
                    "global_step": result.metrics["global_step"],
                    "max_steps": result.metrics["max_steps"],
                }
            )
            if result.stopped and not last:
                # Stopped mid-way: the policy of this iteration is the result.
                if is_main():
                    train_dpo_result_to(result.output_dir, out_dir)
                stopped = True
                break
            stopped = result.stopped
            current = result.output_dir
            barrier()  # rank 0 saved `current`: the others read it next
    finally:
        if is_main():
            shutil.rmtree(scratch, ignore_errors=True)
    metrics = {
        "method": "online_dpo",
        "generation_engine": engine.to_dict(),
        "policy_model": str(policy_model),
        "iterations": iterations,
        "reward": reward.describe(),
        "human_pairs": len(human),
        "generated_pairs": sum(i["generated_pairs"] for i in iterations),
        # Totals over the iterations; sampling counts as setup.
        "global_step": sum(i["global_step"] for i in iterations),
        "max_steps": sum(i["max_steps"] for i in iterations),
        "train_seconds": round(sum(i["train_seconds"] for i in iterations), 3),
        "setup_seconds": round(
            sum(i["setup_seconds"] + i["sampling_seconds"] for i in iterations), 3
        ),
        "seconds": round(time.perf_counter() - started, 3),
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # other ranks saved no model there
    with open(Path(out_dir, PAIRS_FILE), "w") as fh:
        for p in used:
            fh.write(json.dumps(p) + "\n")
    write_run_files(out_dir, config, metrics, history, stopped)
    return TrainResult(output_dir=str(out_dir), metrics=metrics, stopped=stopped, history=history)


def train_dpo_result_to(source: str | Path, out_dir: str | Path) -> None:
    """Copy a saved policy (an intermediate iteration) to `out_dir`."""
    shutil.copytree(source, out_dir, dirs_exist_ok=True)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


__all__ = ["reward_pairs", "train_online_dpo"]
