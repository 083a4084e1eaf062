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
from contextlib import nullcontext
from functools import cache
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
from training.trainer_utils import gc_frozen, new_tracker, run_trainer, token_count
from training.trl_cpu import TRL_PATCHES, log_probs_only, trl_patched

# The CPU speed-ups `train_dpo` applies unless told otherwise: TRL's (`trl_cpu.TRL_PATCHES`),
# the lean reference pass (`dpo_trainer_class`) and `gc_frozen`. Each stays only with a
# measured end-to-end gain (docs/training.md, "CPU speed-ups inside TRL").
DPO_SPEEDUPS: tuple[str, ...] = (*TRL_PATCHES, "ref_log_probs_only", "gc_freeze")


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


@cache
def dpo_trainer_class(lean_reference: bool = True) -> type:
    """TRL's DPOTrainer, whose reference pass asks the LM head for log-probs only.

    TRL's fused head also computes entropy, mean logit and top-1 per token for its logged
    metrics; `compute_ref_log_probs` reads `.log_probs` and drops the rest. Skipping them there
    took the bench model's reference pass from 2.00 s to 1.85 s. Only `trl_cpu.CpuLogProbs`
    (CPU, inside `compact_lm_head_on_cpu`) honours the request; elsewhere the class is TRL's.
    """
    from trl import DPOTrainer

    if not lean_reference:
        return DPOTrainer

    class LeanReferenceDPOTrainer(DPOTrainer):
        def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
            with log_probs_only():
                return super().compute_ref_log_probs(model, inputs)

    return LeanReferenceDPOTrainer


def build_dpo_trainer(
    policy_model: ModelRef,
    pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: DPOTrainConfig,
    callbacks: list[Any] | None = None,
    *,
    lean_reference: bool = True,
) -> Any:
    """A configured DPOTrainer (reference log-probs already computed when precomputing)."""
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

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
        num_train_epochs=config.epochs,
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
    return dpo_trainer_class(lean_reference)(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config, model) if config.lora else None,
        callbacks=callbacks or [],
    )


def save_policy(trainer: Any, out_dir: str | Path) -> None:
    """Save a plain causal LM: merge LoRA adapters into the weights if there are any."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config.use_cache = True  # TRL turns the KV cache off for training; generation wants it
    model.save_pretrained(str(out_dir))
    trainer.processing_class.save_pretrained(str(out_dir))


def train_dpo(
    policy_model: ModelRef,
    pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: DPOTrainConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = DPO_SPEEDUPS,
) -> TrainResult:
    """Run DPO from `policy_model` (its weights are also the reference); save to `out_dir`.

    `speedups` names the CPU speed-ups to apply (`DPO_SPEEDUPS`, all by default); fewer is for
    measuring what each one gains (`bench/training.py --ablation`). Results do not depend on it.
    """
    import time

    unknown = sorted(set(speedups) - set(DPO_SPEEDUPS))
    if unknown:
        raise ValueError(
            f"speedups: unknown {', '.join(unknown)}; known: {', '.join(DPO_SPEEDUPS)}"
        )
    config = config or DPOTrainConfig()
    tracker = new_tracker(progress)
    callbacks = [tracker.as_callback()]
    lean_reference = "ref_log_probs_only" in speedups
    started = time.perf_counter()
    with (
        gc_frozen() if "gc_freeze" in speedups else nullcontext(),
        trl_patched([s for s in speedups if s in TRL_PATCHES]) as patched,
    ):
        trainer = build_dpo_trainer(
            policy_model, pairs, out_dir, config, callbacks, lean_reference=lean_reference
        )
        setup_seconds = time.perf_counter() - started
        used = len(trainer.train_dataset)
        tracker.started = time.perf_counter()
        metrics = run_trainer(trainer, tracker)
    tokens = token_count(trainer.train_dataset, ("prompt_ids", "chosen_ids", "rejected_ids"))
    # The prompt is read twice per pair (once with each completion).
    tokens += token_count(trainer.train_dataset, ("prompt_ids",))
    done = metrics["fraction_done"] * config.epochs
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
        pairs_per_s=used * done / metrics["train_seconds"],
        tokens_per_s=tokens * done / metrics["train_seconds"],
        lora_merged=config.lora,
        # What ran: the lean reference pass needs `cpu_log_probs` (only it honours the request).
        speedups=[
            s
            for s in DPO_SPEEDUPS
            if s in patched
            or (s == "gc_freeze" and s in speedups)
            or (s == "ref_log_probs_only" and lean_reference and "cpu_log_probs" in patched)
        ],
    )
    save_policy(trainer, out_dir)
    write_run_files(out_dir, config, metrics, tracker.history, tracker.stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=tracker.stopped, history=tracker.history
    )
