"""Light train functions for the launcher's tests: real ranks, real gloo, no model to load.

They have the train functions' signature (`start, rows, out_dir, config, progress`) so that
`training.rank` runs them as it runs a stage; `config` is any config class (unused).
"""

from __future__ import annotations

import time
from typing import Any

from training.results import TrainResult


def _group() -> Any:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist


def train_all_reduce_forever(start: str, rows: list, out_dir: str, config: Any, progress: Any):
    """All-reduce a tensor each step (every rank in lock step, like DDP) and never finish."""
    import torch

    dist = _group()
    step = 0
    while True:
        total = torch.ones(1)
        dist.all_reduce(total)
        step += 1
        if progress:
            progress(step, 0, {"world": float(total.item())})
        time.sleep(0.2)


def train_fails_on_rank_1(start: str, rows: list, out_dir: str, config: Any, progress: Any):
    """Rank 1 raises after the group formed; rank 0 waits in an all-reduce for it."""
    import torch

    dist = _group()
    if dist.get_rank() == 1:
        raise ValueError("rows of rank 1 are unreadable")
    dist.all_reduce(torch.ones(1))
    return TrainResult(output_dir=out_dir, metrics={})
