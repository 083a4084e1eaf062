"""DPO on preference pairs with TRL's DPOTrainer, set up for speed on the device at hand.

Loss (sigmoid, Rafailov et al. 2023 eq. 7), per pair (x, y_w, y_l):
    -log sigmoid(beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))])
log pi(y|x) sums completion-token log-probs (including the eos TRL appends to string pairs).

Reference: by default the reference log-probs are computed once, in the trainer's constructor,
and no reference model stays in memory (`precompute_ref_log_probs`). With LoRA the reference is
the same weights with the adapters disabled (no second copy). The saved output is always a plain
causal LM: LoRA adapters are merged into the weights before saving, so `generate()` and a later
`train_dpo()` load it like any other model.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import write_run_files
from training.config import DPOTrainConfig
from training.data import pairs_to_dataset
from training.env import common_trainer_args
from training.models import ModelRef, load_tokenizer
from training.progress import Progress
from training.results import TrainResult
from training.saving import save_policy
from training.trainer_utils import new_tracker, run_trainer, token_count
from training.trl_cpu import TRL_PATCHES, trl_patched


def lora_config(config: DPOTrainConfig, model: Any) -> Any:
    """LoRA on every linear layer but the LM head (TRL needs the head untouched)."""
    from peft import LoraConfig

    targets: Any = list(config.lora_target_modules) or "all-linear"
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        # GPT-2 stores its projections as Conv1D (weights transposed).
        fan_in_fan_out=model.config.model_type == "gpt2",
    )


def build_dpo_trainer(
    policy_model: ModelRef,
    pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: DPOTrainConfig,
    callbacks: list[Any] | None = None,
) -> Any:
    """A configured DPOTrainer (reference log-probs already computed when precomputing)."""
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    dataset = pairs_to_dataset(pairs)  # validates the pairs
    tokenizer = load_tokenizer(policy_model, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(policy_model), dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    args = DPOConfig(
        output_dir=str(out_dir),
        beta=config.beta,
        loss_type=[config.loss_type],
        label_smoothing=config.label_smoothing,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs_for(len(dataset)),
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        precompute_ref_log_probs=config.precompute_ref_log_probs,
        precompute_ref_batch_size=config.batch_size,  # bigger batches pad more; no faster on CPU
        seed=config.seed,
        warmup_steps=float(config.warmup_ratio),  # a float < 1 is a ratio
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        **{**common_trainer_args(), "activation_checkpointing": config.gradient_checkpointing},
    )
    return DPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config, model) if config.lora else None,
        callbacks=callbacks or [],
    )


def train_dpo(
    policy_model: ModelRef,
    pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: DPOTrainConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
) -> TrainResult:
    """Run DPO from `policy_model` (its weights are also the reference); save to `out_dir`.

    `speedups` names the CPU speed-ups inside TRL to apply (`trl_cpu.TRL_PATCHES`, all by
    default); fewer is for measuring what each one gains (`bench/training.py --ablation`).
    The results do not depend on it; an unknown name raises ValueError.
    """
    import time

    config = config or DPOTrainConfig()
    tracker = new_tracker(progress)
    started = time.perf_counter()
    with trl_patched(speedups) as patched:
        trainer = build_dpo_trainer(policy_model, pairs, out_dir, config, [tracker.as_callback()])
        setup_seconds = time.perf_counter() - started
        used = len(trainer.train_dataset)
        tracker.started = time.perf_counter()
        metrics = run_trainer(trainer, tracker)
    tokens = token_count(trainer.train_dataset, ("prompt_ids", "chosen_ids", "rejected_ids"))
    # The prompt is read twice per pair (once with each completion).
    tokens += token_count(trainer.train_dataset, ("prompt_ids",))
    epochs = trainer.args.num_train_epochs  # `config.epochs_for`: raised for few pairs
    done = metrics["fraction_done"] * epochs
    if config.lora:
        reference = "base weights, adapters disabled"
    elif config.precompute_ref_log_probs:
        reference = "precomputed once"
    else:
        reference = "separate copy"
    metrics.update(
        policy_model=str(policy_model),
        reference=reference,
        setup_seconds=round(setup_seconds, 3),
        pairs=len(pairs),
        pairs_used=used,
        pairs_dropped_prompt_too_long=len(pairs) - used,
        epochs_run=epochs,
        pairs_per_s=used * done / metrics["train_seconds"],
        tokens_per_s=tokens * done / metrics["train_seconds"],
        lora_merged=config.lora,
        speedups=list(patched),  # empty on a TRL version other than the measured one
    )
    save_policy(trainer, out_dir)
    write_run_files(out_dir, config, metrics, tracker.history, tracker.stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=tracker.stopped, history=tracker.history
    )
