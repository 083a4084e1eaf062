"""Benchmark AI-judge triage: human rankings saved, the judge's agreement, and judge throughput.

    .venv/bin/python bench/judge.py            # 4,000 tasks, one seed, a real tiny judge timed
    .venv/bin/python bench/judge.py --smoke    # seconds (tests/test_bench_smoke.py)

Simulated project (pure numpy, no Django). Each candidate has d = 128 features x ~ N(0, 1); its
true quality is q = w . x + e with e ~ N(0, 0.5) (what no reward model can see); feature 0 is
its length (standardised). People rank a task by q + N(0, 0.6) per candidate (Thurstone noise:
about 10 % of pairs flipped, mostly close ones). The judge perceives q + bias * length + noise
scaled so that its perceived order is wrong on `--judge-error` of the pairs (close pairs first,
as a real judge's errors are); it is asked each pair in both orders and, in each order
independently, names the first-shown candidate with probability `--position-bias`. Orders that
disagree give a tie (no label). Its margin is the perceived difference; a task's confidence is
its smallest |margin|, 0 when any pair was position-inconsistent.

Measured: the accuracy of a reward model on held-out true pairs (held-out tasks), the reward
model being a Bradley-Terry linear model on the features fitted by Newton's method to the
dataset's pairs. Why reward-model accuracy rather than pair-label accuracy: label accuracy
rewards a dataset for what it leaves out (a judge that ties everything unsure has perfect
labels); what the project needs is the model trained on them, and a judge's *systematic* error
(length) costs accuracy there while its random errors mostly wash out. Two arms, the same human
budget n (one ranking per task):
- people alone: people rank n tasks in random order; the dataset is their pairs;
- judge triage: the judge ranks every task first; people rank the n tasks of lowest judge
  confidence; the dataset is people's pairs there and the judge's consistent pairs elsewhere
  (each weighted `--judge-weight` against a person's 1: the snapshot policy "both, weighted").
Target: 98 % of the accuracy people alone reach with every task ranked. Reported: the smallest n
on a grid reaching it in each arm (mean over seeds) and their ratio (the issue's target: at most
60 %). The judge's agreement with people comes from `quality.calibration` on tasks three
simulated people ranked. Throughput: a real `CausalLMJudge` on the tiny bootstrapped model
(K = 4, 6 comparisons of 2 askings per task), comparisons per second, at two batch sizes.
Figures are printed, never asserted. Results: docs/benchmarks.md, "AI judges".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from feedback_app.preferences.quality.calibration import JudgeComparison, calibrate  # noqa: E402
from feedback_app.preferences.quality.judgements import Judgement  # noqa: E402

D, UNSEEN, PEOPLE_NOISE = 128, 0.5, 0.6


def project(tasks: int, k: int, rng: np.random.Generator):
    w = rng.normal(size=D)
    w /= np.linalg.norm(w)
    x = rng.normal(size=(tasks, k, D))
    q = x @ w + rng.normal(0, UNSEEN, size=(tasks, k))
    return x, q


def pairs_of(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def people_labels(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(tasks, pairs) +1 when the person put i above j, -1 otherwise."""
    seen = q + rng.normal(0, PEOPLE_NOISE, size=q.shape)
    i, j = np.array(pairs_of(q.shape[1])).T
    return np.sign(seen[:, i] - seen[:, j])


def judge_answers(x, q, *, error, position_bias, length_bias, rng):
    """(labels, margins, consistent) per (task, pair); a label is 0 where the orders disagreed."""
    i, j = np.array(pairs_of(q.shape[1])).T
    perceived = q + length_bias * x[..., 0]
    gap = perceived[:, i] - perceived[:, j]
    noise = rng.normal(size=gap.shape) * np.sqrt(2)
    true_gap = q[:, i] - q[:, j]
    # The noise scale hits the error rate against the truth, bias included.
    lo, hi = 0.0, 4.0
    for _ in range(40):
        mid = (lo + hi) / 2
        wrong = np.mean(np.sign(gap + mid * noise) != np.sign(true_gap))
        lo, hi = (mid, hi) if wrong < error else (lo, mid)
    margin = gap + hi * noise
    opinion = np.sign(margin)
    a_first = np.where(rng.random(gap.shape) < position_bias, 1, opinion)
    b_first = np.where(rng.random(gap.shape) < position_bias, -1, opinion)
    consistent = a_first == b_first
    return np.where(consistent, a_first, 0), margin, consistent, a_first, b_first


def fit(diffs: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Bradley-Terry linear reward model: max sum |y| log sigma(sign(y) w.(x_i - x_j)) - l2
    |w|^2 / 2 (|y| is the pair's weight: a judge's pair may count less than a person's)."""
    w = np.zeros(diffs.shape[1])
    z = diffs * np.sign(y)[:, None]
    weight = np.abs(y)
    for _ in range(25):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (weight * (1 - p)) - l2 * w
        hess = (z * (weight * p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return w


def accuracy(w: np.ndarray, x: np.ndarray, q: np.ndarray) -> float:
    i, j = np.array(pairs_of(q.shape[1])).T
    score = x @ w
    return float(np.mean(np.sign(score[:, i] - score[:, j]) == np.sign(q[:, i] - q[:, j])))


def dataset(x, labels, tasks_mask):
    i, j = np.array(pairs_of(x.shape[1])).T
    diffs = (x[:, i] - x[:, j])[tasks_mask].reshape(-1, D)
    y = labels[tasks_mask].reshape(-1)
    keep = y != 0
    return diffs[keep], y[keep]


def run_arms(args, seed: int):
    rng = np.random.default_rng(seed)
    x, q = project(args.tasks + args.heldout, args.k, rng)
    xt, qt, xh, qh = x[: args.tasks], q[: args.tasks], x[args.tasks :], q[args.tasks :]
    human = people_labels(qt, rng)
    judged, margin, consistent, _, _ = judge_answers(
        xt, qt, error=args.judge_error, position_bias=args.position_bias,
        length_bias=args.length_bias, rng=rng,
    )  # fmt: skip
    confidence = np.where(consistent, np.abs(margin), 0.0).min(axis=1)
    triage_order = np.argsort(confidence, kind="stable")
    random_order = rng.permutation(args.tasks)
    grid = np.unique(np.linspace(0, args.tasks, args.grid + 1).astype(int))
    curves = {"people alone": [], "judge triage": []}
    for n in grid:
        ranked = np.zeros(args.tasks, bool)
        ranked[random_order[:n]] = True
        d, y = dataset(xt, human, ranked)
        curves["people alone"].append(accuracy(fit(d, y), xh, qh) if len(y) else 0.5)
        ranked = np.zeros(args.tasks, bool)
        ranked[triage_order[:n]] = True
        mixed = np.where(ranked[:, None], human, args.judge_weight * judged)
        d, y = dataset(xt, mixed, np.ones(args.tasks, bool))
        curves["judge triage"].append(accuracy(fit(d, y), xh, qh))
    return grid, {k: np.array(v) for k, v in curves.items()}


def needed(grid, curve, target) -> int | None:
    hit = np.nonzero(curve >= target)[0]
    return int(grid[hit[0]]) if len(hit) else None


def agreement_figures(args, seed: int):
    """The judge against three simulated people per task, through quality.calibration."""
    rng = np.random.default_rng(seed + 1000)
    tasks = args.calibration_tasks
    x, q = project(tasks, args.k, rng)
    _, _, _, a_first, b_first = judge_answers(
        x, q, error=args.judge_error, position_bias=args.position_bias,
        length_bias=args.length_bias, rng=rng,
    )  # fmt: skip
    ids = np.arange(tasks * args.k).reshape(tasks, args.k)
    judge = [
        JudgeComparison(t, int(ids[t, i]), int(ids[t, j]), int(a_first[t, p]), int(b_first[t, p]))
        for t in range(tasks)
        for p, (i, j) in enumerate(pairs_of(args.k))
    ]
    people = []
    for person in range(3):
        seen = q + rng.normal(0, PEOPLE_NOISE, size=q.shape)
        for t in range(tasks):
            order = np.argsort(-seen[t])
            people.append(
                Judgement(t, person, {int(ids[t, c]): r + 1 for r, c in enumerate(order)})
            )
    lengths = {int(ids[t, c]): float(x[t, c, 0]) for t in range(tasks) for c in range(args.k)}
    gold = {
        t: {int(ids[t, c]): r + 1 for r, c in enumerate(np.argsort(-q[t]))} for t in range(tasks)
    }
    return calibrate(
        judge, people, gold=gold, lengths=lengths, replicates=args.replicates, seed=seed
    )


def throughput(args) -> list[tuple[int, int, float, float]]:
    """A real tiny judge: (batch size, comparisons, seconds, comparisons per second)."""
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig
    from training.env import limit_threads
    from training.judges.local import CausalLMJudge

    limit_threads(1)
    cache = os.environ.get("BASE_MODEL_CACHE", str(REPO / ".cache" / "test-models"))
    model = bootstrap_base_model(cache, BootstrapConfig.tiny()).output_dir
    words = [
        "list",
        "value",
        "module",
        "function",
        "class",
        "error",
        "sequence",
        "mapping",
        "call",
        "return",
    ]
    rng = np.random.default_rng(0)
    prompts = [
        (" ".join(rng.choice(words, 5)), [" " + " ".join(rng.choice(words, 8)) for _ in range(4)])
        for _ in range(args.judge_prompts)
    ]
    rows = []
    base = None
    for batch in (1, 12):
        judge = CausalLMJudge(base.loaded if base else model, batch_size=batch)
        base = base or judge
        judge.rank(*prompts[0])  # warm
        start = time.perf_counter()
        n = sum(len(judge.rank(p, c).comparisons) for p, c in prompts)
        seconds = time.perf_counter() - start
        rows.append((batch, n, seconds, n / seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run: seconds")
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--judge-error", type=float, default=0.25)
    parser.add_argument("--position-bias", type=float, default=0.3)
    parser.add_argument("--length-bias", type=float, default=0.5, help="x length std, q units")
    parser.add_argument("--judge-weight", type=float, default=1.0, help="a judge pair's weight")
    parser.add_argument("--grid", type=int, default=20, help="human budgets tried per arm")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--calibration-tasks", type=int, default=500)
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--judge-prompts", type=int, default=20)
    args = parser.parse_args()
    if args.smoke:
        args.tasks, args.heldout, args.grid, args.seeds = 400, 200, 8, 1
        args.calibration_tasks, args.replicates, args.judge_prompts = 60, 50, 2

    load = os.getloadavg()
    print(f"## AI judges ({args.tasks} tasks, K={args.k}, judge error {args.judge_error:.0%}, "
          f"position bias {args.position_bias:.0%}, length bias {args.length_bias})\n")  # fmt: skip
    print(f"load average {load[0]:.2f} {load[1]:.2f}\n")
    ratios, needs = [], {"people alone": [], "judge triage": []}
    print("| seed | target acc | people alone: rankings | judge triage: rankings | ratio | "
          "judge alone acc | all people acc |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        grid, curves = run_arms(args, seed)
        target = 0.98 * curves["people alone"][-1]
        n_people = needed(grid, curves["people alone"], target)
        n_triage = needed(grid, curves["judge triage"], target)
        for arm, n in (("people alone", n_people), ("judge triage", n_triage)):
            needs[arm].append(n)
        ratio = n_triage / n_people if n_people and n_triage is not None else None
        if ratio is not None:
            ratios.append(ratio)
        print(f"| {seed} | {target:.3f} | {n_people} | {n_triage} | "
              f"{'n/a' if ratio is None else f'{ratio:.0%}'} | "
              f"{curves['judge triage'][0]:.3f} | {curves['people alone'][-1]:.3f} |")  # fmt: skip
    mean = f"{np.mean(ratios):.0%}" if ratios else "n/a"
    print(f"\nhuman rankings with judge triage / people alone (mean over seeds): {mean} "
          f"(target: at most 60 %)\n")  # fmt: skip

    cal = agreement_figures(args, 0)
    print(
        f"### The judge against simulated people ({args.calibration_tasks} tasks, 3 people each)\n"
    )
    print("| figure | against people | against the true order |")
    print("|---|---|---|")
    names = ("agreement", "decided_accuracy", "kappa", "tau_b", "position_consistency",
             "longer_preferred", "reference_longer_preferred", "reference_agreement")  # fmt: skip
    for name in names:
        print(f"| {name} | {getattr(cal.people, name)} | {getattr(cal.gold, name)} |")

    print("\n### A real tiny judge (CausalLMJudge, 2-layer GPT-2, CPU, one thread)\n")
    print("| batch | comparisons | seconds | comparisons/s |")
    print("|---|---|---|---|")
    for batch, n, seconds, rate in throughput(args):
        print(f"| {batch} | {n} | {seconds:.2f} | {rate:.1f} |")


if __name__ == "__main__":
    main()
