"""One rank against two on this machine: the throughput of data-parallel training, and where
the rest of the time goes.

Run: nice -n 10 .venv/bin/python bench/distributed.py [--steps 8]   (--smoke: tiny, for tests)

Both sides run through the product's launcher (`training.launch.launch_train`: torchrun, gloo
on CPU) with the same global batch: one rank with every core's threads against two ranks of
one thread each (DDP, batch halved per rank). The model is a GPT-2 built locally from a config
(about 29M parameters, no hub), trained on random tokens with AdamW: a compute-bound step, so
the ratio shows what DDP itself costs. Per rank it times, after WARMUP steps: building the batch
("data"), forward + backward (DDP's all-reduce overlaps the backward), the optimiser step; then
the gradient all-reduce alone on a tensor the size of the model. Start-up is the wall time
before the first timed step (launcher, imports, process group, model build). Prints a markdown
table (docs/benchmarks.md, "More than one process").
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WARMUP = 2


@dataclass
class BenchConfig:
    n_layer: int = 6
    n_embd: int = 512
    n_head: int = 8
    vocab: int = 16384
    seq: int = 128
    global_batch: int = 16
    steps: int = 8

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        return cls(**data)


def rank_bench(start: str, rows: list, out_dir: str, config: BenchConfig, progress: Any) -> Any:
    """What each rank runs (the train functions' signature, so the launcher runs it)."""
    import torch
    import torch.distributed as dist
    from transformers import GPT2Config, GPT2LMHeadModel

    from training.results import TrainResult

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=config.vocab, n_positions=config.seq, n_embd=config.n_embd,
            n_layer=config.n_layer, n_head=config.n_head,
        )
    )  # fmt: skip
    params = sum(p.numel() for p in model.parameters())
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = config.global_batch // world
    gen = torch.Generator().manual_seed(int(os.environ.get("RANK", "0")))
    times = {"data": 0.0, "forward_backward": 0.0, "optimiser": 0.0}
    loop_started = 0.0
    for step in range(WARMUP + config.steps):
        if step == WARMUP:
            times = dict.fromkeys(times, 0.0)
            loop_started = time.perf_counter()
        t0 = time.perf_counter()
        ids = torch.randint(0, config.vocab, (batch, config.seq), generator=gen)
        t1 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        t2 = time.perf_counter()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        times["data"] += t1 - t0
        times["forward_backward"] += t2 - t1
        times["optimiser"] += t3 - t2
        if progress:
            progress(step + 1, WARMUP + config.steps, {"loss": float(loss)})
    loop = time.perf_counter() - loop_started
    all_reduce = 0.0
    if world > 1:
        flat = torch.zeros(params)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(3):
            dist.all_reduce(flat)
        all_reduce = (time.perf_counter() - t0) / 3
    metrics = {
        "params": params,
        "loop_s": loop,
        "tokens_per_s": config.global_batch * config.seq * config.steps / loop,
        **{f"{k}_s_per_step": v / config.steps for k, v in times.items()},
        "all_reduce_s_per_step": all_reduce,
        "loop_ended_at": time.time(),
    }
    return TrainResult(output_dir=out_dir, metrics=metrics)


def run(processes: int, threads: int, config: BenchConfig) -> dict[str, Any]:
    from training.launch import launch_train
    from training.profile import WorkerProfile

    profile = WorkerProfile(processes=processes, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        result = launch_train(
            "bench.distributed:rank_bench", [""], [], tmp, config, profile=profile
        )
    m = result.metrics
    m["wall_s"] = time.time() - started
    m["startup_s"] = m["loop_ended_at"] - started - m["loop_s"]
    m["threads"] = profile.threads_per_process()
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 steps (tests)")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    # The ranks import this module as bench.distributed: the repository must be on their path.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    import training  # noqa: F401  (offline defaults)
    from bench.distributed import BenchConfig  # the ranks' name for it, not __main__'s

    if args.smoke:
        config = BenchConfig(n_layer=1, n_embd=32, n_head=2, vocab=256, seq=16, global_batch=4,
                             steps=2)  # fmt: skip
    else:
        config = BenchConfig(steps=args.steps)
    cores = os.cpu_count() or 1
    # One rank with every core's threads (the fair baseline on a quiet machine), one rank with
    # one thread (on a busy machine OpenMP threads spin-wait for each other: training/env.py,
    # limit_threads), and the ranks sharing out the cores.
    setups = [(1, cores), (1, 1), (2, max(1, cores // 2))]
    rows = [(n, run(n, t, config)) for n, t in dict.fromkeys(setups)]
    one, two = rows[0][1], rows[-1][1]
    load = os.getloadavg()
    print(f"model: {one['params'] / 1e6:.1f}M parameters, seq {config.seq}, "
          f"global batch {config.global_batch}, {config.steps} timed steps after {WARMUP}; "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip
    print()
    print("| ranks | threads each | tokens/s | data s/step | fwd+bwd s/step | optimiser s/step "
          "| all-reduce alone s/step | start-up s | wall s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n, m in rows:
        print(f"| {n} | {m['threads']} | {m['tokens_per_s']:.0f} | {m['data_s_per_step']:.4f} "
              f"| {m['forward_backward_s_per_step']:.3f} | {m['optimiser_s_per_step']:.3f} "
              f"| {m['all_reduce_s_per_step']:.3f} | {m['startup_s']:.1f} "
              f"| {m['wall_s']:.1f} |")  # fmt: skip
    print()
    print(f"throughput ratio, two ranks / one: {two['tokens_per_s'] / one['tokens_per_s']:.2f}x")
    if len(rows) == 3:
        single = rows[1][1]["tokens_per_s"]
        print(f"two ranks / one rank of one thread: {two['tokens_per_s'] / single:.2f}x")


if __name__ == "__main__":
    main()
