"""KTO on unpaired thumbs up/down with TRL's KTOTrainer, set up for speed on the device.

Loss (Ethayarajh et al. 2024), per row (x, y, label) with r = log pi(y|x) - log ref(y|x):
    desirable:   w_d * (1 - sigmoid(beta * (r - z)))
    undesirable: w_u * (1 - sigmoid(beta * (z - r)))
where z, the reference point, is a batch estimate of KL(pi || ref) from each prompt paired with
another row's completion (hence a batch of at least 2 rows), clamped at 0 and not
differentiated. Unlike DPO, no row needs a partner: a thumbs up or down alone is a row.

Reference: as in `training.dpo`, the reference log-probs (of the rows and of the KL
completions) are computed once in the trainer's constructor and no reference model stays in
memory (`precompute_ref_log_probs`). TRL reads the rows in order (sequential sampling, for the
KL pairing), so they are shuffled once with the run's seed first. TRL's `fused_lm_head`
computes the log-probs, so the CPU speed-ups of `training.trl_cpu` apply unchanged.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import write_run_files
from training.config import KTOTrainConfig
from training.data import rows_to_dataset, validate_kto_rows
from training.env import common_trainer_args
from training.models import ModelRef, load_tokenizer
from training.progress import Progress
from training.results import TrainResult
from training.saving import save_policy
from training.trainer_utils import new_tracker, run_trainer, token_count
from training.trl_cpu import TRL_PATCHES, trl_patched

KTO_KEYS = ("prompt", "completion", "label")


def build_kto_trainer(
    policy_model: ModelRef,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: KTOTrainConfig,
    callbacks: list[Any] | None = None,
) -> Any:
    """A configured KTOTrainer (reference log-probs already computed when precomputing)."""
    from transformers import AutoModelForCausalLM
    from trl import KTOConfig, KTOTrainer

    validate_kto_rows(rows)
    # TRL reads KTO rows in order (its KL estimate needs it): shuffled once, so that rows
    # grouped by label do not make whole batches of thumbs up then thumbs down.
    order = list(range(len(rows)))
    random.Random(config.seed).shuffle(order)
    dataset = rows_to_dataset([rows[i] for i in order], KTO_KEYS)
    tokenizer = load_tokenizer(policy_model, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(policy_model), dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    args = KTOConfig(
        output_dir=str(out_dir),
        beta=config.beta,
        loss_type=config.loss_type,
        desirable_weight=config.desirable_weight,
        undesirable_weight=config.undesirable_weight,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        precompute_ref_log_probs=config.precompute_ref_log_probs,
        precompute_ref_batch_size=config.batch_size,
        seed=config.seed,
        warmup_steps=float(config.warmup_ratio),  # a float < 1 is a ratio
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        **{**common_trainer_args(), "activation_checkpointing": config.gradient_checkpointing},
    )
    return KTOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks or [],
    )


def train_kto(
    policy_model: ModelRef,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: KTOTrainConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
) -> TrainResult:
    """Run KTO from `policy_model` (its weights are also the reference); save to `out_dir`.

    `speedups`: the CPU speed-ups inside TRL to apply (`trl_cpu.TRL_PATCHES`, all by default).
    """
    config = config or KTOTrainConfig()
    tracker = new_tracker(progress)
    started = time.perf_counter()
    cpu_started = time.process_time()
    with trl_patched(speedups) as patched:
        trainer = build_kto_trainer(policy_model, rows, out_dir, config, [tracker.as_callback()])
        setup_seconds = time.perf_counter() - started
        tracker.started = time.perf_counter()
        metrics = run_trainer(trainer, tracker)
    # Setup + training in CPU seconds of this process (saving left out): with one torch
    # thread it hardly moves with the load of a shared machine, unlike wall-clock time.
    cpu_seconds = time.process_time() - cpu_started
    dataset = trainer.train_dataset
    done = metrics["fraction_done"] * config.epochs
    # Each step reads every row twice: with its own completion and with the KL completion.
    tokens = token_count(dataset, ("prompt_ids", "completion_ids", "KL_completion_ids"))
    tokens += (
        token_count(dataset, ("prompt_ids",)) if "KL_completion_ids" in dataset.column_names else 0
    )
    desirable = sum(1 for row in rows if row["label"])
    metrics.update(
        policy_model=str(policy_model),
        reference="precomputed once" if config.precompute_ref_log_probs else "separate copy",
        setup_seconds=round(setup_seconds, 3),
        cpu_seconds=round(cpu_seconds, 3),
        rows=len(rows),
        rows_desirable=desirable,
        rows_undesirable=len(rows) - desirable,
        rows_per_s=len(dataset) * done / metrics["train_seconds"],
        tokens_per_s=tokens * done / metrics["train_seconds"],
        speedups=list(patched),
    )
    save_policy(trainer, out_dir)
    write_run_files(out_dir, config, metrics, tracker.history, tracker.stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=tracker.stopped, history=tracker.history
    )
