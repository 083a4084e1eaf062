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
import contextlib
import dataclasses
import os
import statistics
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
    bucket_mb: int = 25  # DDP's gradient bucket size (torch's default 25)
    sync: bool = True  # False: DDP skips the gradient all-reduce (no_sync), an ablation

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
        model = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=config.bucket_mb)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = config.global_batch // world
    gen = torch.Generator().manual_seed(int(os.environ.get("RANK", "0")))
    times = {"data": 0.0, "forward_backward": 0.0, "optimiser": 0.0}
    loop_started = cpu_started = 0.0
    for step in range(WARMUP + config.steps):
        if step == WARMUP:
            times = dict.fromkeys(times, 0.0)
            loop_started, cpu_started = time.perf_counter(), time.process_time()
        t0 = time.perf_counter()
        ids = torch.randint(0, config.vocab, (batch, config.seq), generator=gen)
        t1 = time.perf_counter()
        with contextlib.nullcontext() if config.sync or world == 1 else model.no_sync():
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
    # CPU seconds of this rank's process (all its threads) in the timed steps, summed over the
    # ranks: what the work cost, whatever else the machine was running.
    cpu = torch.tensor([time.process_time() - cpu_started], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(cpu)
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
        "cpu_s_per_step": float(cpu) / config.steps,
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


# What two cores give two independent processes here, with no DDP at all: each runs the same
# one-thread matmul loop; one alone against two at once. The ceiling for two ranks' wall ratio.
_MATMULS = """
import time, torch
torch.set_num_threads(1)
a = torch.randn(768, 768)
t0 = time.perf_counter()
for _ in range({n}):
    a = torch.tanh(a @ a)
print(time.perf_counter() - t0)
"""


def machine_ceiling(n: int = 400) -> float:
    """Aggregate throughput of two independent one-thread torch processes over one alone."""
    import subprocess

    def together(count: int) -> float:
        procs = [
            subprocess.Popen([sys.executable, "-c", _MATMULS.format(n=n)], stdout=subprocess.PIPE)
            for _ in range(count)
        ]
        times = [float(proc.communicate()[0]) for proc in procs]
        return count * n / max(times)

    one = together(1)
    return together(2) / one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 steps (tests)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--bucket-mb", type=int, default=25, help="DDP's gradient bucket size")
    parser.add_argument(
        "--no-sync", action="store_true", help="ablation: two ranks without the all-reduce"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="alternate the one-thread pair this many times"
    )
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
        config = BenchConfig(steps=args.steps, sync=not args.no_sync, bucket_mb=args.bucket_mb)
    cores = os.cpu_count() or 1
    # One rank with every core's threads (the fair baseline on a quiet machine), then one rank of
    # one thread against two ranks of one thread each, alternated (A B A B) so that a change of
    # load hits both sides alike.
    rows = [(1, run(1, cores, config))] if cores > 1 else []
    for _ in range(args.repeat):
        rows += [(1, run(1, 1, config)), (2, run(2, max(1, cores // 2), config))]
    load = os.getloadavg()
    print(f"model: {rows[0][1]['params'] / 1e6:.1f}M parameters, seq {config.seq}, "
          f"global batch {config.global_batch}, {config.steps} timed steps after {WARMUP}; "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip
    print()
    print("| ranks | threads each | tokens/s | data s/step | fwd+bwd s/step | optimiser s/step "
          "| all-reduce alone s/step | CPU s/step (all ranks) | start-up s | wall s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, m in rows:
        print(f"| {n} | {m['threads']} | {m['tokens_per_s']:.0f} | {m['data_s_per_step']:.4f} "
              f"| {m['forward_backward_s_per_step']:.3f} | {m['optimiser_s_per_step']:.3f} "
              f"| {m['all_reduce_s_per_step']:.3f} | {m['cpu_s_per_step']:.3f} "
              f"| {m['startup_s']:.1f} | {m['wall_s']:.1f} |")  # fmt: skip
    print()
    for line in summary(rows, cores):
        print(line)
    if not args.smoke and cores > 1:
        ceiling = machine_ceiling()
        two = [m["tokens_per_s"] for n, m in rows if n == 2]
        one = [m["tokens_per_s"] for n, m in rows if n == 1 and m["threads"] == 1]
        ratio = statistics.median(b / a for a, b in zip(one, two, strict=True))
        print(
            f"the machine's own ceiling: two independent one-thread torch processes run "
            f"{ceiling:.2f}x one alone (no DDP); two ranks reach {ratio / ceiling:.2f} of it"
        )


def summary(rows: list[tuple[int, dict[str, Any]]], cores: int) -> list[str]:
    """The ratios: wall throughput (what the machine gave), and DDP's own cost in CPU seconds
    (what the code costs, which load does not change): two ranks doing the global batch's work
    for X CPU seconds against one rank's Y gives at most cores x Y / X on free cores."""
    single = [m for n, m in rows if n == 1 and m["threads"] == 1]
    two = [m for n, m in rows if n == 2]
    lines = []
    if rows[0][1]["threads"] > 1:
        ratio = statistics.median(m["tokens_per_s"] for m in two) / rows[0][1]["tokens_per_s"]
        lines.append(f"throughput ratio, two ranks / one rank of {rows[0][1]['threads']} "
                     f"threads: {ratio:.2f}x")  # fmt: skip
    pairs = [b["tokens_per_s"] / a["tokens_per_s"] for a, b in zip(single, two, strict=True)]
    lines.append(
        "throughput ratio, two ranks / one: "
        + ", ".join(f"{r:.2f}x" for r in pairs)
        + f" (median {statistics.median(pairs):.2f}x; ranks of one thread, alternated)"
    )
    cost = [b["cpu_s_per_step"] / a["cpu_s_per_step"] for a, b in zip(single, two, strict=True)]
    efficiency = 1 / statistics.median(cost)
    lines.append("CPU cost of the same steps, two ranks / one: "
                 + ", ".join(f"{c:.2f}x" for c in cost)
                 + f"; parallel efficiency {efficiency:.2f}, so at most "
                 f"{min(2, cores) * efficiency:.2f}x on {min(2, cores)} free cores")  # fmt: skip
    return lines


if __name__ == "__main__":
    main()
