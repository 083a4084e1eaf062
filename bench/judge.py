"""Benchmark AI-judge triage: human rankings saved, the judge's agreement, and judge throughput.

    .venv/bin/python bench/judge.py            # 2,000 tasks, 5 seeds, a real tiny judge timed
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
(length) costs accuracy there while its random errors mostly wash out.

Triage as the product does it, with the product's own rules (imported, no database): the judge
ranks every task first (its Copeland ranking of its two-order verdicts, `copeland_groups`); its
submit gives each task a graded priority (`annotation.judge_votes.triage_priority`, the judge's
`unsure_margin`: `--unsure-margin`); the hand-out gives people the tasks by it, highest first,
then by id (`Task.judge_unsure`, annotation/handout.py); trust is the product's rule
(`quality.calibration.trusted`: the judge's calibration against three simulated people and the
true order, on `--calibration-tasks` tasks of each seed, must reach the project's
`judge_min_agreement`, `--min-agreement`, default the project's); an untrusted judge's votes
weigh 0 (`judge_figures.vote_weights`). The dataset is what the snapshot pipeline keeps
(`rows.kept_by_task`: rankings counted, people deciding every pair they voted on, the judge's
votes counted only on pairs no person did, `keep_pairs`), one training row per kept pair (the
default policy has no `margin` column: TRL's DPO and reward losses weight every row alike;
`--with-margin` fits RewardTrainer's loss with the rows' margins, a judge's pair's being
judge_weight x its vote strength). Three arms, the same human budget n (one ranking a task):
- people alone: people rank the first n tasks by id; policy votes=people;
- judge triage: people rank the first n tasks in triage order; policy votes=both with
  `--judge-weight`: people decide the tasks they ranked, the judge (if trusted) the others;
- triage order only: the triage order, people's votes only (what the order alone is worth).
Target: 98 % of the accuracy people alone reach with every task ranked. Reported per seed: the
smallest n on a grid reaching it in each arm, their ratio (the issue's target: at most 60 %),
and over seeds the mean ratio with a 95 % bootstrap interval (resampling seeds).
The judge's agreement with people comes from `quality.calibration` on tasks three
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


def fit(
    diffs: np.ndarray, y: np.ndarray, l2: float = 1e-3, margin: np.ndarray | None = None
) -> np.ndarray:
    """Bradley-Terry linear reward model: max sum |y| log sigma(sign(y) w.(x_i - x_j) - m)
    - l2 |w|^2 / 2 (|y| a pair's weight, m its margin: TRL RewardTrainer's loss)."""
    w = np.zeros(diffs.shape[1])
    z = diffs * np.sign(y)[:, None]
    weight = np.abs(y)
    m = np.zeros(len(y)) if margin is None else margin
    for _ in range(25):
        with np.errstate(over="ignore"):  # a separable fit: sigma saturates to 0 or 1
            p = 1 / (1 + np.exp(-(z @ w - m)))
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


JUDGE, PERSON = 10**9, 1  # annotator ids: the AI judge and whoever ranks a task


def product_rules():
    """The product's own rules, imported (no database is touched): the triage mark a judge's
    submit writes, the pairs a snapshot policy keeps, the judge's Copeland ranking."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback_app.settings")
    import django

    django.setup()
    from feedback_app.annotation.judge_votes import triage_priority
    from feedback_app.preferences.pairs import PairPolicy, RankingRow
    from feedback_app.preferences.rows import kept_by_task
    from training.judges.base import copeland_groups

    return triage_priority, PairPolicy, RankingRow, kept_by_task, copeland_groups


def kept_pairs(rankings, policy, weights, rules) -> list[tuple[int, int, float]]:
    """(chosen id, rejected id, margin column) of every pair the snapshot keeps: the product's
    `rows.kept_by_task` over rankings ordered by task, the judge among the AI judges."""
    kept_by_task = rules[3]
    rows = [(0, r.task_id, r.annotator_id, r.groups, False, False) for r in rankings]
    rows.sort(key=lambda r: r[1])  # stable: each task's rankings in the order given
    judges = {JUDGE} if policy.votes == "both" else ()
    return [
        (v.chosen, v.rejected, v.weight * v.margin)
        for _, kept in kept_by_task(rows, policy, None, weights, judges)
        for v in kept
    ]


def run_arms(args, seed: int, rules, trusted: bool):
    """Reward-model accuracy against the human budget n in three arms (module doc)."""
    triage_priority, PairPolicy, RankingRow, _, copeland_groups = rules
    rng = np.random.default_rng(seed)
    k = args.k
    x, q = project(args.tasks + args.heldout, k, rng)
    xt, qt, xh, qh = x[: args.tasks], q[: args.tasks], x[args.tasks :], q[args.tasks :]
    flat = xt.reshape(-1, D)  # candidate id t * k + c
    seen = qt + rng.normal(0, PEOPLE_NOISE, size=qt.shape)
    judged, margin, _, a_first, b_first = judge_answers(
        xt, qt, error=args.judge_error, position_bias=args.position_bias,
        length_bias=args.length_bias, rng=rng,
    )  # fmt: skip
    pairs = pairs_of(k)
    people, judge, levels = [], [], []
    for t in range(args.tasks):
        ids = [t * k + c for c in range(k)]
        people.append(RankingRow(t, PERSON, [[ids[c]] for c in np.argsort(-seen[t])]))
        groups, _ = copeland_groups(
            k, [(i, j, int(judged[t, p])) for p, (i, j) in enumerate(pairs)]
        )
        judge.append(RankingRow(t, JUDGE, [[ids[c] for c in g] for g in groups]))
        comparisons = [
            {"a": ids[i], "b": ids[j], "a_first": int(a_first[t, p]),
             "b_first": int(b_first[t, p]), "margin": float(margin[t, p])}
            for p, (i, j) in enumerate(pairs)
        ]  # fmt: skip
        level = triage_priority(comparisons, [], unsure_margin=args.unsure_margin)
        levels.append(min(level, 1) if args.yes_no_mark else level)
    # The hand-out's two orders: by id; with triage, by the judge's priority (highest first).
    by_id = list(range(args.tasks))
    by_triage = sorted(by_id, key=lambda t: (-levels[t], t))
    people_policy = PairPolicy()  # votes: people
    both = PairPolicy(votes="both", judge_weight=args.judge_weight)
    # judge_figures.vote_weights: judge_weight when trusted, else 0 (its rankings not counted).
    judge_weights = {JUDGE: args.judge_weight if trusted else 0.0}

    def acc(chosen: list[tuple[int, int, float]]) -> float:
        if not chosen:
            return 0.5
        c, r, m = np.array(chosen).T
        c, r = c.astype(int), r.astype(int)
        margin = m if args.with_margin else None
        return accuracy(fit(flat[c] - flat[r], np.ones(len(c)), margin=margin), xh, qh)

    grid = np.unique(np.linspace(0, args.tasks, args.grid + 1).astype(int))
    curves = {"people alone": [], "judge triage": [], "triage order only": []}
    for n in grid:
        alone = [people[t] for t in sorted(by_id[:n])]
        curves["people alone"].append(acc(kept_pairs(alone, people_policy, None, rules)))
        ranked = set(by_triage[:n])
        rows = [r for t in by_id for r in ((judge[t], people[t]) if t in ranked else (judge[t],))]
        curves["judge triage"].append(acc(kept_pairs(rows, both, judge_weights, rules)))
        first = [people[t] for t in sorted(ranked)]
        curves["triage order only"].append(acc(kept_pairs(first, people_policy, None, rules)))
    unsure = float(np.mean(np.array(levels) > 0))
    return grid, {name: np.array(v) for name, v in curves.items()}, unsure, levels


def interval(values: list[float]) -> str:
    """Mean over seeds with a 95 % percentile bootstrap interval (resampling seeds)."""
    if not values:
        return "n/a"
    v = np.array(values)
    rng = np.random.default_rng(0)
    means = rng.choice(v, size=(2000, len(v))).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return f"{v.mean():.0%} [{lo:.0%}, {hi:.0%}] (seeds={len(v)})"


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
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--judge-error", type=float, default=0.25)
    parser.add_argument("--position-bias", type=float, default=0.3)
    parser.add_argument("--length-bias", type=float, default=0.5, help="x length std, q units")
    parser.add_argument(
        "--judge-weight", type=float, default=1.0,
        help="the policy's judge_weight (votes=both): a trusted judge's vote beside a person's",
    )  # fmt: skip
    parser.add_argument(
        "--min-agreement", type=float, default=None,
        help="the project's judge_min_agreement (default: the project's default)",
    )  # fmt: skip
    parser.add_argument(
        "--with-margin", action="store_true",
        help="fit with the rows' margin column (RewardTrainer's loss), judge pairs at weight",
    )  # fmt: skip
    parser.add_argument(
        "--yes-no-mark", action="store_true",
        help="order by the former mark (any pair unsure: 1, else 0), not the graded priority",
    )  # fmt: skip
    parser.add_argument(
        "--unsure-margin", type=float, default=0.0,
        help="the judge's unsure_margin (quality units): a smaller |margin| marks a task unsure",
    )  # fmt: skip
    parser.add_argument("--grid", type=int, default=20, help="human budgets tried per arm")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--calibration-tasks", type=int, default=500)
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--judge-prompts", type=int, default=20)
    args = parser.parse_args()
    if args.smoke:
        args.tasks, args.heldout, args.grid, args.seeds = 400, 200, 8, 2
        args.calibration_tasks, args.replicates, args.judge_prompts = 60, 50, 2

    rules = product_rules()
    if args.min_agreement is None:
        from feedback_app.core.models import Project

        args.min_agreement = Project._meta.get_field("judge_min_agreement").default
    load = os.getloadavg()
    print(f"## AI judges ({args.tasks} tasks, K={args.k}, judge error {args.judge_error:.0%}, "
          f"position bias {args.position_bias:.0%}, length bias {args.length_bias}, "
          f"judge_weight {args.judge_weight}, unsure_margin {args.unsure_margin}, "
          f"min_agreement {args.min_agreement}, margin column {args.with_margin}, "
          f"{args.seeds} seeds)\n")  # fmt: skip
    print(f"load average {load[0]:.2f} {load[1]:.2f}\n")
    from feedback_app.preferences.quality.calibration import trusted

    ratios, order_ratios = [], []
    print("| seed | agreement low (people, truth) | trusted | unsure tasks | priority >= 50 "
          "| target acc | people alone: rankings | judge triage: rankings | ratio "
          "| triage order only: rankings | judge alone acc | all people acc |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        cal = agreement_figures(args, seed)
        trust = trusted(cal, args.min_agreement)
        grid, curves, unsure, levels = run_arms(args, seed, rules, trust)
        doubtful = float(np.mean(np.array(levels) >= 50))
        target = 0.98 * curves["people alone"][-1]
        n_people = needed(grid, curves["people alone"], target)
        n_triage = needed(grid, curves["judge triage"], target)
        n_order = needed(grid, curves["triage order only"], target)
        ratio = n_triage / n_people if n_people and n_triage is not None else None
        if ratio is not None:
            ratios.append(ratio)
        if n_people and n_order is not None:
            order_ratios.append(n_order / n_people)
        lows = f"{cal.people.agreement.low:.3f}, {cal.gold.agreement.low:.3f}"
        print(f"| {seed} | {lows} | {'yes' if trust else 'no'} | {unsure:.0%} | {doubtful:.0%} "
              f"| {target:.3f} | {n_people} | {n_triage} | "
              f"{'n/a' if ratio is None else f'{ratio:.0%}'} | {n_order} | "
              f"{curves['judge triage'][0]:.3f} | {curves['people alone'][-1]:.3f} |")  # fmt: skip
    print(f"\nhuman rankings with judge triage / people alone: {interval(ratios)} "
          f"(target: at most 60 %); triage order without the judge's votes: "
          f"{interval(order_ratios)}\n")  # fmt: skip

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
