"""A CPU speed-up for TRL 1.16's fused LM head, scoped to one training run.

TRL projects hidden states through the LM head "in tiles, only the positions whose label is not
-100" when Triton runs (CUDA/XPU); elsewhere it scores every position (prompt and padding too),
to keep tile shapes fixed for compilers such as Neuron. Eager CPU has no recompilation, so the
compact path is simply less work: on the bench's 2.6M-parameter model the LM head is about a
third of the FLOPs; DPO training ran several times faster with the same loss (docs/training.md),
and tests/training checks the trainer's loss against the DPO formula with and without it.

Only `trl.trainer.utils._use_triton` (the compact/full switch) is replaced; the kernel keeps its
own reference and still runs its PyTorch code on CPU. Pinned to trl 1.16.0: on any other version
the context does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

PATCHED_TRL_VERSION = "1.16.0"


@contextmanager
def compact_lm_head_on_cpu() -> Iterator[bool]:
    """Within the block, TRL scores only labelled positions on CPU too. Yields whether patched."""
    import trl
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if trl.__version__ != PATCHED_TRL_VERSION or original is None:
        yield False
        return

    def use_compact(device):  # noqa: ANN001, ANN202
        return device.type == "cpu" or original(device)

    trl_utils._use_triton = use_compact
    try:
        yield True
    finally:
        trl_utils._use_triton = original
