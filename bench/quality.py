"""Benchmark the pure quality figures: time to compute each from simulated rankings, in-process.

    .venv/bin/python bench/quality.py            # 100,000 rankings: K=4, 200 annotators, overlap 3
    .venv/bin/python bench/quality.py --smoke    # seconds: every figure once on a tiny run (tests)

No database and no Django: the rankings come from `quality.simulate` (200 bots with error rates
of 0-30 %, every tenth with a position bias, 6 model versions), and each figure is computed from
the whole set, as a full refresh in a worker would. The simulation itself is timed apart. The
reward model's scores are the true qualities plus noise; its held-out pairs are the human
majority pairs. Wall and CPU seconds are both printed (CPU time is the steadier on a shared
machine). Figures are printed, never asserted; the load average is printed beside them
(the machine is shared). Results: docs/benchmarks.md, "Quality figures".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from feedback_app.preferences.quality.agreement import (  # noqa: E402
    kendall_tau,
    krippendorff_alpha,
    pairwise_agreement,
)
from feedback_app.preferences.quality.judgements import task_votes  # noqa: E402
from feedback_app.preferences.quality.leaderboard import (  # noqa: E402
    comparisons_from_judgements,
    leaderboard,
    reward_model_accuracy,
    win_matrix,
)
from feedback_app.preferences.quality.reliability import (  # noqa: E402
    AnnotatorReliability,
    annotator_reliability,
)
from feedback_app.preferences.quality.review import disagreements_from_votes  # noqa: E402
from feedback_app.preferences.quality.simulate import Bot, simulate  # noqa: E402


def bots(n: int, seed: int) -> list[Bot]:
    rng = np.random.default_rng(seed)
    return [
        Bot(
            a,
            error_rate=float(rng.uniform(0, 0.3)),
            position_bias=0.5 if a % 10 == 0 else 0.0,
            seconds=float(rng.uniform(10, 60)),
            skip_rate=float(rng.uniform(0, 0.1)),
        )
        for a in range(n)
    ]


def flagged(rows: list[AnnotatorReliability]) -> str:
    codes = Counter(f.code for r in rows for f in r.flags)
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none"


Row = tuple[str, float, float, str]


def timed(rows: list[Row], name: str, fn: Callable[[], Any], show: Callable[[Any], str]) -> Any:
    """Run fn, keeping wall and CPU seconds: on a shared machine CPU time is the steadier one."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    rows.append((name, time.perf_counter() - wall, time.process_time() - cpu, show(result)))
    return result


def run(rankings: int, annotators: int, k: int, overlap: int, replicates: int, seed: int) -> None:
    tasks = -(-rankings // overlap)
    start = time.perf_counter()
    sim = simulate(
        bots(annotators, seed),
        tasks=tasks,
        k=k,
        overlap=overlap,
        strengths=[0.0, 0.3, 0.6, -0.2, 0.9, -0.5],
        gold_tasks=tasks // 50,
        seed=seed,
    )
    simulated = time.perf_counter() - start
    js = sim.judgements
    rng = np.random.default_rng(seed)
    scores = {c: q + float(rng.normal(0, 1.0)) for c, q in sim.quality.items()}

    rows: list[Row] = []
    timed(
        rows,
        "pairwise agreement",
        lambda: pairwise_agreement(js),
        lambda r: f"{r.value:.3f} ({r.tasks} tasks, {r.judgements} judgements)",
    )
    timed(
        rows,
        "Kendall tau-b (mean)",
        lambda: kendall_tau(js),
        lambda r: f"{r.value:.3f} ({r.comparisons} comparisons)",
    )
    timed(
        rows,
        "Krippendorff alpha (ordinal)",
        lambda: krippendorff_alpha(js),
        lambda r: f"{r.value:.3f} ({r.units} units)",
    )
    timed(
        rows,
        "annotator reliability + flags",
        lambda: annotator_reliability(js, skips=sim.skips, gold=sim.gold, lengths=sim.lengths),
        lambda r: f"{len(r)} annotators, {sum(1 for x in r if x.flags)} flagged ({flagged(r)})",
    )
    comps = timed(
        rows,
        "comparisons from rankings",
        lambda: comparisons_from_judgements(js, sim.model_of),
        lambda r: f"{len(r)} comparisons",
    )
    timed(
        rows,
        f"Bradley-Terry + {replicates} bootstrap fits",
        lambda: leaderboard(comps, replicates=replicates, seed=seed),
        lambda r: " ".join(f"{s.model}:{s.strength:+.2f}" for s in r.standings),
    )
    timed(
        rows,
        "head-to-head win matrix",
        lambda: win_matrix(comps),
        lambda r: f"{len(r.models)} models",
    )
    votes = timed(
        rows, "vote counts per task pair", lambda: task_votes(js), lambda r: f"{len(r)} tasks"
    )
    majority = [
        (a, b) if pv.a_better > pv.b_better else (b, a)
        for tv in votes.values()
        for (a, b), pv in tv.pairs.items()
        if pv.a_better != pv.b_better
    ]
    timed(
        rows,
        "reward-model accuracy",
        lambda: reward_model_accuracy(scores, majority),
        lambda r: f"{r.value:.3f} on {r.pairs} majority pairs",
    )
    timed(
        rows,
        "review queue",
        lambda: disagreements_from_votes(votes, scores),
        lambda r: f"{len(r)} pairs",
    )

    load = os.getloadavg()
    shape = f"{len(js)} rankings, K={k}, {annotators} annotators, overlap {overlap}"
    print(f"## Quality figures ({shape})\n")
    print(
        f"simulation: {simulated:.2f} s (not counted); load average {load[0]:.2f} {load[1]:.2f}\n"
    )
    print("| figure | wall s | CPU s | result |")
    print("|---|---|---|---|")
    for name, wall, cpu, shown in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {shown} |")
    total_wall, total_cpu = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| **every figure** | **{total_wall:.2f}** | **{total_cpu:.2f}** | |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run: seconds")
    parser.add_argument("--rankings", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.smoke:
        args.rankings, args.annotators, args.replicates = 600, 20, 10
    run(args.rankings, args.annotators, args.k, args.overlap, args.replicates, args.seed)


if __name__ == "__main__":
    main()
