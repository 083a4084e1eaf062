"""What a train function needs to know and share when it runs as one of several ranks.

Under `training.launch` every rank runs the same train function; TRL's trainers handle their
own steps, but a stage that samples between trainers (online DPO, best-of-n) or decides
something on one rank (the divergence detector) must agree with its peers. These helpers are
no-ops in one process, so the same code runs in the worker, the CLI and on N ranks:

- `world()`: (rank, number of ranks), from the launcher's environment before any group exists;
- `shard(items)`: this rank's share of a list (every `size`-th item, from `rank`), with indices;
- `gather_in_order(pairs)`: every rank's (index, item) pairs on every rank, in index order;
- `broadcast(value)`: rank 0's value on every rank (the detector's stop decision);
- `barrier()`: wait for every rank (a file rank 0 wrote is there for the others to read).

The group is the one torchrun's environment describes (gloo on CPU, NCCL on GPU), started
with accelerate's `PartialState` when no trainer has started it yet, so the trainers that
come later reuse it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(this rank, number of ranks); (0, 1) in one process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return world()[0] == 0


def rank_seed(seed: int) -> int:
    """The seed this rank samples with: `seed` on rank 0 (and in one process), another on each
    other rank, so that ranks sampling their shares draw their own samples reproducibly."""
    return seed + 7919 * world()[0]


def _group() -> Any:
    """torch.distributed with its group started (several ranks only)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState()  # the group from RANK / WORLD_SIZE / MASTER_ADDR, as the trainers start it
    return dist


def shard(items: Sequence[T]) -> list[tuple[int, T]]:
    """This rank's items with their indices: every `size`-th one from `rank`.

    >>> shard(["a", "b", "c"])  # one process: all of them
    [(0, 'a'), (1, 'b'), (2, 'c')]
    """
    rank, size = world()
    return [(i, items[i]) for i in range(rank, len(items), size)]


def gather_in_order(pairs: Sequence[tuple[int, T]]) -> list[T]:
    """Every rank's (index, item) pairs, on every rank, as one list in index order.

    >>> gather_in_order([(1, "b"), (0, "a")])
    ['a', 'b']
    """
    if world()[1] > 1:
        dist = _group()
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, list(pairs))
        pairs = [p for part in parts for p in part]
    return [item for _, item in sorted(pairs, key=lambda p: p[0])]


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank (each rank passes its own; only rank 0's is kept)."""
    if world()[1] == 1:
        return value
    dist = _group()
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world()[1] > 1:
        _group().barrier()
