"""Save a trained model from every rank: gathered where it is sharded, written by one.

With one process or DDP each rank holds the whole model, so the main process can write it on
its own. With a sharded profile (FSDP, DeepSpeed ZeRO-3) each rank holds a slice of every
weight: the full state dict is gathered collectively, so EVERY rank must call the save (a rank
that skips it leaves the others waiting in the all-gather forever), and only the main process
(rank 0) writes the files, which the launcher then publishes (uploads) as before.

    save_causal_lm(model, tokenizer, out_dir, accelerator)   # on every rank
    save_policy(trainer, out_dir)                            # the same, from a TRL trainer

The sharding is read from the model and the accelerator, not from the profile: accelerate's
FSDP (1 or 2) and ZeRO-3 are recognised by `accelerator.distributed_type`, and a model sharded
with torch's `fully_shard` directly (FSDP2: its parameters are DTensors) by its parameters.

LoRA under a sharded run is refused: merging the adapters needs every full weight on one rank
(`training.launch` refuses the combination before any work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def is_sharded(model: Any, accelerator: Any) -> bool:
    """Whether each rank holds only a slice of `model`'s weights (FSDP, ZeRO-3, DTensors)."""
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    if kind == DistributedType.FSDP:
        return True
    if kind == DistributedType.DEEPSPEED:
        return getattr(accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def gathered_state_dict(model: Any, accelerator: Any) -> dict[str, Any]:
    """The full state dict of a sharded model, on the main process (empty elsewhere).

    Collective: every rank must call it, in the same order as the others."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return accelerator.get_state_dict(model)  # accelerate's own gather (FULL_STATE_DICT)
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    # cpu_offload: gathered one tensor at a time into rank 0's CPU memory, never a GPU's.
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def save_causal_lm(model: Any, tokenizer: Any, out_dir: str | Path, accelerator: Any) -> None:
    """Save a plain causal LM (LoRA merged) to `out_dir`; call it on every rank (see above)."""
    unwrapped = accelerator.unwrap_model(model)
    state = None
    if is_sharded(model, accelerator):
        if hasattr(unwrapped, "merge_and_unload"):
            raise ValueError("lora: cannot merge adapters into a sharded (FSDP, ZeRO-3) model")
        state = gathered_state_dict(model, accelerator)
    if not accelerator.is_main_process:
        return
    if hasattr(unwrapped, "merge_and_unload"):
        unwrapped = unwrapped.merge_and_unload()
    unwrapped.config.use_cache = True  # TRL turns the KV cache off in training; generation wants it
    unwrapped.save_pretrained(str(out_dir), state_dict=state)
    tokenizer.save_pretrained(str(out_dir))


def save_policy(trainer: Any, out_dir: str | Path) -> None:
    """`save_causal_lm` for a TRL trainer's policy: every rank calls it, rank 0 writes."""
    from accelerate.utils import DistributedType

    accelerator = trainer.accelerator
    # DeepSpeed gathers from its engine (`model_wrapped`); FSDP and DDP from `trainer.model`.
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    model = trainer.model_wrapped if deepspeed else trainer.model
    save_causal_lm(model, trainer.processing_class, out_dir, accelerator)
