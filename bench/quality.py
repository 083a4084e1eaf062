"""Benchmark the quality figures: the pure functions in-process, then the app around them.

    .venv/bin/python bench/quality.py            # 100,000 rankings: K=4, 200 annotators, overlap 3
    .venv/bin/python bench/quality.py --smoke    # seconds: every figure once on a tiny run (tests)
    .venv/bin/python bench/quality.py --no-django   # the pure part only

Django part (after the pure one): the same simulated rankings stored in a scratch database
(PostgreSQL `bench_quality` on the server of DATABASE_URL when that is PostgreSQL, else a
SQLite file in a temporary folder), bulk-inserted (tasks, candidates of 6 model versions,
leases, rankings with display order and time). Then: the time `reports.quality_refresh` takes
to compute and store every figure from the database (wall and CPU of this process), and the
median response time of each dashboard (and the API's report) over --requests GETs through
Django's test client, as a ratio of the ranking page's median in the same run (an admin who
also annotates reloads a held task: hand-out look-up, candidates, the Jinja2 page).

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
import re
import statistics
import sys
import tempfile
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


# --- Django part -------------------------------------------------------------------------------


def scratch_database(tmp: str, name: str) -> str:
    """A fresh database URL: `name` beside DATABASE_URL's PostgreSQL, else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp}/bench_quality.sqlite3"
    import psycopg

    server = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


def seed_rows(sim, annotators: int, k: int, overlap: int, open_tasks: int = 20):
    """Store the simulation through bulk inserts; returns (project, admin). The admin also
    annotates, and `open_tasks` unranked tasks (HTML rendered) wait for them."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from feedback_app.annotation.models import Assignment, Candidate, Prompt, Ranking, Task
    from feedback_app.core.models import Membership, ModelVersion, Project

    User = get_user_model()
    now = timezone.now()
    project = Project.objects.create(
        name="bench", candidates_per_task=k, annotations_per_task=overlap
    )
    users = User.objects.bulk_create(
        [User(username=f"bot-{a}", password="!") for a in range(annotators)], batch_size=2000
    )
    admin = User.objects.create_user("bench-admin", password="x")
    Membership.objects.bulk_create(
        [Membership(project=project, user=u) for u in users]
        + [Membership(project=project, user=admin, role="admin")]
    )
    versions = [
        ModelVersion.objects.create(project=project, kind="policy", name=f"m{i}", weights="w")
        for i in range(max(sim.model_of.values()) + 1)
    ]
    tasks_n = max(j.task_id for j in sim.judgements) + 1
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(project=project, text=f"prompt {t}", content_hash=f"{t:064x}")
            for t in range(tasks_n + open_tasks)
        ],
        batch_size=5000,
    )
    tasks = Task.objects.bulk_create(
        [Task(project=project, prompt=p, target_annotations=overlap) for p in prompts],
        batch_size=5000,
    )
    cands = []
    for t, task in enumerate(tasks):
        for i in range(k):
            c = t * k + i
            length = sim.lengths.get(c, 100)
            cand = Candidate(
                task=task,
                text=("word " * (length // 5))[:length],
                model_version=versions[sim.model_of[c]] if c in sim.model_of else None,
                position=i,
            )
            if t >= tasks_n:
                cand.render()  # what the import stores for the pages
            cands.append(cand)
    cands = Candidate.objects.bulk_create(cands, batch_size=5000)
    cid = [c.pk for c in cands]
    leases, rankings = [], []
    for j in sim.judgements:
        task = tasks[j.task_id]
        order = [cid[c] for c in j.display_order]
        groups = [[cid[c] for c, _ in sorted(j.ranks.items(), key=lambda x: x[1])][i:i + 1]
                  for i in range(len(j.ranks))]  # fmt: skip
        leases.append(
            Assignment(
                task=task,
                annotator=users[j.annotator_id],
                status="submitted",
                leased_at=now,
                expires_at=now + timedelta(minutes=15),
                display_order=order,
            )  # fmt: skip
        )
        rankings.append((task, users[j.annotator_id], groups, order, int(j.seconds * 1000)))
    leases = Assignment.objects.bulk_create(leases, batch_size=5000)
    Ranking.objects.bulk_create(
        [
            Ranking(
                task=t,
                annotator=u,
                assignment=a,
                groups=g,
                display_order=o,
                time_spent_ms=ms,
                payload_hash="bench",
            )  # fmt: skip
            for (t, u, g, o, ms), a in zip(rankings, leases, strict=True)
        ],
        batch_size=5000,
    )
    from django.db.models import Count, OuterRef, Subquery

    counts = (
        Ranking.objects.filter(task=OuterRef("pk")).values("task").annotate(n=Count("id"))
    ).values("n")
    Task.objects.filter(project=project, pk__lte=tasks[tasks_n - 1].pk).update(
        submitted_count=Subquery(counts)
    )
    return project, admin


def median_ms(client, url: str, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code}")
    return statistics.median(times) * 1000


def run_django(
    rankings: int, annotators: int, k: int, overlap: int, seed: int, requests: int, db_name: str
) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db_name):
        raise SystemExit(f"--db-name must be a plain identifier, got {db_name!r}")
    with tempfile.TemporaryDirectory() as tmp:
        url = scratch_database(tmp, db_name)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback_app.settings")
        os.environ.setdefault("VAR_DIR", tmp)
        os.environ["QUALITY_REFRESH_SECONDS"] = "0"
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        from feedback_app.preferences import reports

        setup_test_environment()  # the test client's ALLOWED_HOSTS
        call_command("migrate", verbosity=0)
        sim = simulate(
            bots(annotators, seed), tasks=-(-rankings // overlap), k=k, overlap=overlap,
            strengths=[0.0, 0.3, 0.6, -0.2, 0.9, -0.5], seed=seed,
        )  # fmt: skip
        start = time.perf_counter()
        project, admin = seed_rows(sim, annotators, k, overlap)
        seeded = time.perf_counter() - start
        if url.startswith("postgres"):
            from django.db import connection

            with connection.cursor() as cur:
                cur.execute("ANALYZE")
        wall, cpu = time.perf_counter(), time.process_time()
        report = reports.quality_refresh(project=project)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

        client = Client()
        client.force_login(admin)
        base = f"/projects/{project.pk}"
        pages = {"ranking page": f"{base}/annotate/"}
        pages |= {f"quality/{p}": f"{base}/quality/{p}/" for p in reports.FIGURES}
        pages["API quality report"] = f"/api/v1/projects/{project.pk}/quality/"
        for u in pages.values():
            client.get(u)  # warm: templates compiled, connections open
        medians = {name: median_ms(client, u, requests) for name, u in pages.items()}
        backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        load = os.getloadavg()
        print(f"\n## Quality in the app ({report.rankings_count} rankings, {backend})\n")
        print(f"seeding: {seeded:.1f} s (not counted); load average {load[0]:.2f} {load[1]:.2f}\n")
        print(f"refresh every figure from the database: {wall:.2f} s wall, {cpu:.2f} s CPU\n")
        print(f"| page | median ms ({requests} GETs) | x ranking page |")
        print("|---|---|---|")
        ranking = medians["ranking page"]
        for name, ms in medians.items():
            print(f"| {name} | {ms:.1f} | {ms / ranking:.2f} |")
        if url.startswith("postgres"):
            from django.db import connections

            connections.close_all()


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
    parser.add_argument("--requests", type=int, default=30, help="GETs a page (Django part)")
    parser.add_argument("--no-django", dest="django", action="store_false")
    parser.add_argument("--db-name", default="bench_quality", help="scratch PostgreSQL database")
    args = parser.parse_args()
    if args.smoke:
        args.rankings, args.annotators, args.replicates, args.requests = 600, 20, 10, 5
    run(args.rankings, args.annotators, args.k, args.overlap, args.replicates, args.seed)
    if args.django:
        run_django(
            args.rankings,
            args.annotators,
            args.k,
            args.overlap,
            args.seed,
            args.requests,
            args.db_name,
        )


if __name__ == "__main__":
    main()
