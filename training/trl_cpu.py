"""CPU speed-ups for TRL 1.16's fused LM head (DPO, SFT, KTO, GRPO, RLOO), scoped to one run.

Two swaps, each switchable by name (`TRL_PATCHES`, `train_dpo(speedups=...)`) and kept for its
measured end-to-end gain: docs/training.md, "CPU speed-ups inside TRL", has the paired ablation
(`bench/training.py --ablation`) that three earlier swaps did not survive.

TRL's DPOTrainer gets its per-token log-probs (and the entropy, mean logit and top-1 flag it logs)
from a "fused LM head": `ChunkedLogProbFunction`, which never materialises the [tokens, vocab]
logits. That is the right trade on a GPU with a 150k vocabulary; on CPU it costs twice:

1. It projects "only the positions whose label is not -100" when Triton runs (CUDA/XPU) but every
   position elsewhere (prompt and padding too), to keep tile shapes fixed for compilers such as
   Neuron. Eager CPU has no recompilation, so the compact path is simply less work. We replace
   `trl.trainer.utils._use_triton` (the compact/full switch) so CPU takes the compact path.
2. Without Triton its per-tile fold runs as a chain of separate torch ops (scale, max, exp, sum,
   a masked max for top-1, ...), and its backward recomputes the LM-head matmul. We replace
   `_ChunkedLogProbFunction` by `CpuLogProbs` when the logits are fp32 on CPU and small enough
   to hold (`MAX_LOGITS_ELEMENTS`); anything else goes to TRL's own function. In training it
   runs `FusedLogProbs` (one sweep per row block for log-probs and metrics, softmax kept for a
   hand-written backward); without grad (the reference pass) `log_softmax` + `gather` and the
   metrics in cache-sized blocks. LM head alone, bench model (vocab 4096, the 32 batches of one
   epoch, compact rows, best of 6 in one process):

   | | no grad | forward + backward |
   |---|---|---|
   | `log_softmax` + `gather` (the plain loop's head) | 0.21 s | 0.73 s |
   | TRL's kernel, with its metrics | 0.95 s | 2.08 s |
   | `CpuLogProbs`, with the metrics | 0.33 s | 0.71 s |

Results are unchanged: `tests/training/test_trl_cpu.py` checks every output and the gradient
against TRL's function, `tests/training/test_losses.py` the trainer's loss against the DPO
formula with and without the swaps, and `tests/training/test_dpo.py` every logged value of a run
with and without them. Pinned to trl 1.16.0: on any other version nothing is patched and a
`TrlVersionWarning` says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import torch

PATCHED_TRL_VERSION = "1.16.0"
# Above this many logits (tokens x vocab) per call, TRL's chunked kernel is used: the logits, the
# log-softmax and their gradients are each a copy of 4 bytes an element (256 MB at this limit).
MAX_LOGITS_ELEMENTS = 64 * 1024 * 1024
# Per-token metrics TRL may ask for besides log_probs, in the order its kernel returns them.
_METRICS = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1")
# Row block for the metrics: 64k fp32 elements (256 KB) per temporary fits the L2 cache.
_BLOCK_ELEMENTS = 1 << 16


def _logits(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    temperature: float,
    softcap: float | None,
    logit_scale: float,
) -> torch.Tensor:
    """The logits TRL's kernel scores, transformed in its order (scale, softcap, temperature)."""
    z = torch.nn.functional.linear(hidden, weight, bias)
    if logit_scale != 1.0:
        z = z * logit_scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    if temperature != 1.0:
        z = z * (1 / temperature)
    return z


def cpu_log_probs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    temperature: float,
    softcap: float | None,
    logit_scale: float,
    outputs: tuple[str, ...],
) -> tuple[torch.Tensor | None, ...]:
    """`ChunkedLogProbFunction`'s outputs from full logits, so autograd does the backward.

    Returns (log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1), None where not asked.
    Only log_probs carries a gradient: TRL's kernel also differentiates the entropy, but the
    trainers run inside `trl_patched` (DPO, SFT, KTO, GRPO, RLOO of TRL 1.16) detach it for
    logging; GRPO would differentiate it only with `entropy_coef != 0` (an entropy bonus),
    which `GRPOTrainConfig` does not offer.
    """
    z = _logits(hidden, weight, bias, temperature, softcap, logit_scale)
    log_p = torch.log_softmax(z, dim=-1)
    log_probs = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        metrics = _token_metrics(z.detach(), log_p.detach(), targets, outputs)
    return (log_probs, *metrics)


def _token_metrics(
    z: torch.Tensor, log_p: torch.Tensor, targets: torch.Tensor, outputs: tuple[str, ...]
) -> tuple[torch.Tensor | None, ...]:
    """Entropy, log sum p^2, mean logit and top-1 flag per row, in cache-sized row blocks.

    Whole-matrix ops allocate a fresh [tokens, vocab] temporary per metric; inside a training
    step the entropy took 2-3x as long that way as in these blocks, whose temporaries stay in
    the L2 cache.
    """
    n, vocab = log_p.shape
    entropy, sq, mean_logits, is_top1 = _metric_buffers(n, outputs)
    rows = max(1, _BLOCK_ELEMENTS // vocab)
    probs = torch.empty(min(rows, n), vocab) if entropy is not None or sq is not None else None
    for start in range(0, n, rows):
        block = slice(start, start + rows)
        if probs is not None:
            lp = log_p[block]
            p = torch.exp(lp, out=probs[: len(lp)])
            if entropy is not None:
                entropy[block] = -torch.linalg.vecdot(p, lp)
            if sq is not None:
                sq[block] = torch.linalg.vecdot(p, p).log()
        if mean_logits is not None:
            mean_logits[block] = z[block].mean(-1)
        if is_top1 is not None:
            # max(dim) returns the first maximum, as TRL's kernel counts a tie with an earlier
            # token as a miss (and it is ~3x faster than argmax on CPU).
            is_top1[block] = z[block].max(-1).indices == targets[block]
    return entropy, sq, mean_logits, is_top1


class FusedLogProbs(torch.autograd.Function):
    """Training-time log-probs of `hidden @ weight.T + bias` plus TRL's logged metrics, in one
    sweep over cache-sized row blocks, with a hand-written backward.

    Autograd on `log_softmax` + `gather` keeps the log-softmax for its backward and needs
    separate passes for the metrics. Here each block of logits is scanned once for the maximum
    (which also gives the top-1 flag), the mean and the target logit, then turned in place into
    the softmax, which is all the backward needs: d log p_t / dz = onehot(t) - softmax(z). It
    matched autograd on `log_softmax` at the same cost as that alone (see the module docstring).
    The backward overwrites the saved softmax in place, so the graph cannot be backpropagated
    twice (autograd raises, it does not return wrong gradients). Entropy, mean logit and top-1
    carry no gradient; plain logits only (no temperature, scale or softcap).
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        outputs: tuple[str, ...],
    ) -> tuple[torch.Tensor | None, ...]:
        z = torch.nn.functional.linear(hidden, weight, bias)
        log_probs, metrics = _softmax_in_place(z, targets, outputs)
        ctx.save_for_backward(hidden, weight, targets, z)
        ctx.has_bias = bias is not None
        ctx.mark_non_differentiable(*(m for m in metrics if m is not None))
        return (log_probs, *metrics)

    @staticmethod
    def backward(ctx: Any, grad_log_probs: torch.Tensor, *_: Any) -> tuple[Any, ...]:
        hidden, weight, targets, probs = ctx.saved_tensors
        grad_z = probs.mul_(-grad_log_probs.unsqueeze(-1))  # the softmax is not needed again
        grad_z.scatter_add_(1, targets.unsqueeze(-1), grad_log_probs.unsqueeze(-1))
        needs_hidden, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        return (
            grad_z @ weight if needs_hidden else None,
            grad_z.t() @ hidden if needs_weight else None,
            grad_z.sum(0) if needs_bias and ctx.has_bias else None,
            None,
            None,
        )


def _softmax_in_place(
    z: torch.Tensor, targets: torch.Tensor, outputs: tuple[str, ...]
) -> tuple[torch.Tensor, tuple[torch.Tensor | None, ...]]:
    """Target log-probs and metrics of each row of `z`; leaves softmax(z) in `z`."""
    n, vocab = z.shape
    log_probs = torch.empty(n)
    entropy, sq, mean_logits, is_top1 = _metric_buffers(n, outputs)
    rows = max(1, _BLOCK_ELEMENTS // vocab)
    shifted_buffer = torch.empty(min(rows, n), vocab)
    for start in range(0, n, rows):
        block = slice(start, start + rows)
        zb, t = z[block], targets[block]
        top, top_index = zb.max(-1)
        if is_top1 is not None:  # max(dim) gives the first maximum, like TRL's kernel
            is_top1[block] = top_index == t
        if mean_logits is not None:
            mean_logits[block] = zb.mean(-1)
        target_logit = zb.gather(-1, t.unsqueeze(-1)).squeeze(-1)
        shifted = torch.sub(zb, top.unsqueeze(-1), out=shifted_buffer[: len(t)])
        exp = torch.exp(shifted, out=zb)
        total = exp.sum(-1)
        log_total = total.log()
        log_probs[block] = target_logit - top - log_total
        if entropy is not None:  # H = log sum e^x - sum e^x x / sum e^x, x = z - max z
            entropy[block] = log_total - torch.linalg.vecdot(exp, shifted) / total
        exp.div_(total.unsqueeze(-1))
        if sq is not None:
            sq[block] = torch.linalg.vecdot(exp, exp).log()
    return log_probs, (entropy, sq, mean_logits, is_top1)


def _metric_buffers(n: int, outputs: tuple[str, ...]) -> list[torch.Tensor | None]:
    """Empty per-token outputs for the metrics asked for (None for the others), in TRL's order."""
    return [
        torch.empty(n, dtype=torch.bool if name == "is_top1" else torch.float32)
        if name in outputs
        else None
        for name in _METRICS
    ]


def _trains(hidden: torch.Tensor, weight: torch.Tensor) -> bool:
    """A backward will follow: the fused function pays off only there (see FusedLogProbs)."""
    return torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)


def _fits_cpu_path(hidden: torch.Tensor, weight: torch.Tensor) -> bool:
    """fp32 on CPU without autocast, and logits small enough to hold in memory."""
    return (
        hidden.device.type == "cpu"
        and hidden.dtype == weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and hidden.shape[0] * weight.shape[0] <= MAX_LOGITS_ELEMENTS
    )


class CpuLogProbs:
    """Drop-in for `_ChunkedLogProbFunction` (same `apply` signature) that prefers full logits."""

    @staticmethod
    def apply(
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        temperature: float,
        chunk_size: int,
        softcap: float | None = None,
        scale: float = 1.0,
        outputs: tuple[str, ...] = ("log_probs",),
    ) -> tuple[torch.Tensor | None, ...]:
        if not _fits_cpu_path(hidden, weight):
            from trl.kernels import ChunkedLogProbFunction

            return ChunkedLogProbFunction.apply(
                hidden, weight, bias, targets, temperature, chunk_size, softcap, scale, outputs
            )
        plain_logits = temperature == 1.0 and softcap is None and scale == 1.0
        if plain_logits and _trains(hidden, weight):
            return FusedLogProbs.apply(hidden, weight, bias, targets, outputs)
        return cpu_log_probs(hidden, weight, bias, targets, temperature, softcap, scale, outputs)


def _use_compact(switch: Callable[[torch.device], bool]) -> Callable[[torch.device], bool]:
    """TRL's compact/full switch, answering "compact" on CPU as well."""

    def use_compact(device: torch.device) -> bool:
        return device.type == "cpu" or switch(device)

    return use_compact


# The swaps inside TRL, by the name `trl_patched` and `train_dpo(speedups=...)` know them:
# (module, attribute) and a function of the current value giving the replacement. Each one's
# gain: docs/training.md, "CPU speed-ups inside TRL".
TRL_PATCHES: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "compact_lm_head": ("trl.trainer.utils", "_use_triton", _use_compact),
    "cpu_log_probs": ("trl.trainer.utils", "_ChunkedLogProbFunction", lambda _: CpuLogProbs),
}


class TrlVersionWarning(UserWarning):
    """The installed TRL is not the version the CPU speed-ups were measured on: they are off."""


@contextmanager
def trl_patched(speedups: Collection[str] = tuple(TRL_PATCHES)) -> Iterator[tuple[str, ...]]:
    """Within the block the named swaps of `TRL_PATCHES` are in place; yields the names applied.

    Only on trl `PATCHED_TRL_VERSION`: the swaps replace private names whose meaning can change
    in any release, so on another version nothing is patched and a `TrlVersionWarning` says so
    (the run is then correct, only slower). Blocks nest: each restores what it found.
    """
    import importlib

    import trl

    unknown = sorted(set(speedups) - set(TRL_PATCHES))
    if unknown:
        raise ValueError(f"speedups: unknown {', '.join(unknown)}; known: {', '.join(TRL_PATCHES)}")
    if not speedups:
        yield ()
        return
    if trl.__version__ != PATCHED_TRL_VERSION:
        warnings.warn(
            f"CPU speed-ups for TRL are off: trl {trl.__version__} is not the measured "
            f"{PATCHED_TRL_VERSION} (see docs/training.md, CPU speed-ups inside TRL)",
            TrlVersionWarning,
            stacklevel=3,  # the caller of the `with` statement, past contextlib
        )
        yield ()
        return
    applied = tuple(n for n in TRL_PATCHES if n in speedups)
    saved = []
    for name in applied:
        module_name, attribute, replacement = TRL_PATCHES[name]
        module = importlib.import_module(module_name)
        old = getattr(module, attribute)
        saved.append((module, attribute, old))
        setattr(module, attribute, replacement(old))
    try:
        yield applied
    finally:
        for module, attribute, old in reversed(saved):
            setattr(module, attribute, old)
