"""Supervised fine-tuning on demonstrations with TRL's SFTTrainer, set up for the device.

Loss: the mean negative log-likelihood of the completion tokens given the prompt (the prompt is
context, not a target: `completion_only_loss`). Rows are TRL's prompt-completion format, plain
strings or message lists, passed to the trainer as they are. A `messages` row (a whole chat)
is split into its earlier turns as the prompt and its final assistant turn as the completion,
which is the same conversation in TRL's conversational prompt-completion format: TRL can only
restrict the loss of a `messages` row to the assistant turns when the chat template marks them
with `{% generation %}`, which small templates (ours included) do not.

TRL's `fused_lm_head` computes the per-token log-probs here as in DPO, so the CPU speed-ups of
`training.trl_cpu` apply unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import write_run_files
from training.config import SFTTrainConfig
from training.data import rows_to_dataset, validate_sft_rows
from training.env import common_trainer_args
from training.models import ModelRef, load_tokenizer
from training.progress import Progress
from training.results import TrainResult
from training.saving import save_policy
from training.trainer_utils import new_tracker, run_trainer, token_count
from training.trl_cpu import TRL_PATCHES, trl_patched


def sft_dataset(rows: Sequence[dict[str, Any]]) -> tuple[Any, str]:
    """TRL's prompt-completion dataset of `rows` and their format (validated first)."""
    fmt = validate_sft_rows(rows)
    if fmt == "messages":
        rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
    return rows_to_dataset(rows, ("prompt", "completion")), fmt


def build_sft_trainer(
    policy_model: ModelRef,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: SFTTrainConfig,
    callbacks: list[Any] | None = None,
) -> tuple[Any, str]:
    """A configured SFTTrainer, and the format of the rows."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    dataset, fmt = sft_dataset(rows)
    tokenizer = load_tokenizer(policy_model, padding_side="right")
    model = AutoModelForCausalLM.from_pretrained(str(policy_model), dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    args = SFTConfig(
        output_dir=str(out_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        completion_only_loss=config.completion_only_loss,
        loss_type=config.loss_type,
        seed=config.seed,
        warmup_steps=float(config.warmup_ratio),  # a float < 1 is a ratio
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        **{**common_trainer_args(), "activation_checkpointing": config.gradient_checkpointing},
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks or [],
    )
    return trainer, fmt


def train_sft(
    policy_model: ModelRef,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: SFTTrainConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
) -> TrainResult:
    """Fine-tune `policy_model` on demonstration `rows`; save a plain causal LM to `out_dir`.

    `speedups`: the CPU speed-ups inside TRL to apply (`trl_cpu.TRL_PATCHES`, all by default).
    """
    config = config or SFTTrainConfig()
    tracker = new_tracker(progress)
    started = time.perf_counter()
    cpu_started = time.process_time()
    with trl_patched(speedups) as patched:
        trainer, fmt = build_sft_trainer(
            policy_model, rows, out_dir, config, [tracker.as_callback()]
        )
        setup_seconds = time.perf_counter() - started
        tracker.started = time.perf_counter()
        metrics = run_trainer(trainer, tracker)
    # Setup + training in CPU seconds of this process (saving left out): with one torch
    # thread it hardly moves with the load of a shared machine, unlike wall-clock time.
    cpu_seconds = time.process_time() - cpu_started
    dataset = trainer.train_dataset
    done = metrics["fraction_done"] * config.epochs
    # TRL folds the completion mask into `labels` (-100 on the prompt).
    labels = dataset["labels"] if "labels" in dataset.column_names else dataset["input_ids"]
    completion_tokens = sum(sum(1 for t in row if t != -100) for row in labels)
    metrics.update(
        policy_model=str(policy_model),
        format=fmt,
        loss_on="completion" if config.completion_only_loss else "prompt and completion",
        setup_seconds=round(setup_seconds, 3),
        cpu_seconds=round(cpu_seconds, 3),
        rows=len(rows),
        rows_per_s=len(dataset) * done / metrics["train_seconds"],
        tokens_per_s=token_count(dataset, ("input_ids",)) * done / metrics["train_seconds"],
        completion_tokens=int(completion_tokens),
        speedups=list(patched),
    )
    save_policy(trainer, out_dir)
    write_run_files(out_dir, config, metrics, tracker.history, tracker.stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=tracker.stopped, history=tracker.history
    )
