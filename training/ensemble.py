"""A small reward-model ensemble trained in one call, paying for the shared work once.

Members are separate sequence-classification models (one per directory, each loadable by
`RewardScorer`, so an ensemble is a list of paths anywhere a reward model is taken). What they
share is done once: validation and TRL's tokenisation (RewardTrainer takes an already tokenised
dataset as it is). What makes them differ: the seed (head initialisation and data order) and,
with `bootstrap`, a resample with replacement of the pairs per member. One backbone with K
heads would share the forward pass as well, but TRL's RewardTrainer trains one head; the bench
(`bench/overoptimisation.py`) measures K members in one call against K separate runs and
against the floor, the members' own training (`member_runs[k]["train_cpu_seconds"]`, the CPU
seconds of each member's `trainer.train()`): what is left above it is loading, building the
trainer and saving, once per member. Collation (padding each batch) cannot be shared: each
member draws its own batches.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.checkpoint import write_run_files
from training.config import RewardEnsembleConfig, RewardTrainConfig
from training.data import pairs_to_dataset, validate_pairs
from training.models import ModelRef
from training.progress import Progress, report
from training.results import TrainResult
from training.reward import build_reward_trainer, save_reward_model
from training.trainer_utils import new_tracker, run_trainer


def member_indices(n: int, members: int, seed: int, bootstrap: bool) -> list[list[int]]:
    """Row indices each member trains on: all rows, or a resample with replacement (sorted).

    >>> member_indices(3, 2, 0, bootstrap=False)
    [[0, 1, 2], [0, 1, 2]]
    """
    if not bootstrap:
        return [list(range(n)) for _ in range(members)]
    rng = random.Random(seed)
    return [sorted(rng.randrange(n) for _ in range(n)) for _ in range(members)]


def member_dirs(out_dir: str | Path, members: int) -> list[str]:
    return [str(Path(out_dir) / f"member-{k}") for k in range(members)]


def train_reward_ensemble(
    base_model: ModelRef,
    pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: RewardEnsembleConfig | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train `config.members` reward models on `pairs` into `out_dir/member-<k>`.

    `metrics["members"]` lists their directories (pass the list as `reward_model` to GRPO,
    RLOO, best-of-n SFT or online DPO). Progress counts the steps of all members in turn;
    stopping ends after the current member's step, with the members trained so far saved.
    """
    config = config or RewardEnsembleConfig()
    validate_pairs(pairs)
    started = time.perf_counter()
    member_config = RewardTrainConfig(
        **{k: v for k, v in config.to_dict().items() if k not in ("members", "bootstrap")}
    )
    indices: list[list[int]] = []
    dirs = member_dirs(out_dir, config.members)
    tokenised: Any = None
    history: list[dict[str, float]] = []
    members_info: list[dict[str, Any]] = []
    stopped = False
    for k, directory in enumerate(dirs):
        member_started = time.perf_counter()

        def member_progress(step: int, steps: int, metrics: dict, _k: int = k) -> bool:
            # Every member trains on as many rows, so as many steps.
            overall = steps * config.members
            return report(progress, _k * steps + step, overall, {**metrics, "member": _k})

        tracker = new_tracker(member_progress)
        seeded = member_config.replace(seed=config.seed + k)
        if tokenised is None:
            # The first member's trainer tokenises (and drops pairs over max_length) once.
            trainer = build_reward_trainer(
                base_model, pairs_to_dataset(pairs), directory, seeded, [tracker.as_callback()]
            )
            tokenised = trainer.train_dataset
            indices = member_indices(len(tokenised), config.members, config.seed, config.bootstrap)
            trainer.train_dataset = tokenised.select(indices[0])
        else:
            trainer = build_reward_trainer(
                base_model,
                tokenised.select(indices[k]),
                directory,
                seeded,
                [tracker.as_callback()],
            )
        cpu = time.process_time()
        metrics = run_trainer(trainer, tracker)
        train_cpu = time.process_time() - cpu  # the member's own training: the floor's part
        save_reward_model(trainer, directory)
        write_run_files(directory, seeded, metrics, tracker.history, tracker.stopped)
        history.extend({**h, "member": float(k)} for h in tracker.history)
        members_info.append(
            {
                "dir": directory,
                "seed": seeded.seed,
                "pairs": len(indices[k]),
                "distinct_pairs": len(set(indices[k])),
                "seconds": round(time.perf_counter() - member_started, 3),
                "train_cpu_seconds": round(train_cpu, 3),
                "train_loss": metrics["train_loss"],
            }
        )
        if tracker.stopped:
            stopped = True
            break
    metrics = {
        "members": [m["dir"] for m in members_info],
        "member_runs": members_info,
        "base_model": str(base_model),
        "pairs": len(pairs),
        "pairs_used": len(tokenised) if tokenised is not None else 0,
        "bootstrap": config.bootstrap,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_run_files(out_dir, config, metrics, history, stopped)
    return TrainResult(output_dir=str(out_dir), metrics=metrics, stopped=stopped, history=history)


__all__ = ["member_dirs", "member_indices", "train_reward_ensemble"]
