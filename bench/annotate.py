"""Annotation throughput benchmark: next + submit over HTTP against gunicorn + PostgreSQL.

Run (from the repository root, PostgreSQL on 127.0.0.1:5432 with trust auth for ``postgres``)::

    .venv/bin/python bench/annotate.py                       # levels 1,8,32, 15 s each
    .venv/bin/python bench/annotate.py --duration 5 --levels 8 --workers 3 --threads 4
    .venv/bin/python bench/annotate.py --smoke      # seconds: runs end to end (make test)

``--smoke`` seeds 200 tasks, runs one annotator for 1 s against one gunicorn worker without
Redis, prints the same tables and drops its database again: it proves the benchmark still
works after a schema or settings change, and measures nothing worth keeping.

What it does:

1. Drops and recreates the database ``bench_annotate`` (``--db-name``), runs ``migrate`` and
   seeds one project (K candidates, overlap ``--overlap``) with ``--tasks`` tasks and one user a
   simulated annotator, through the real import service.
2. Starts ``gunicorn feedback_app.wsgi`` on a free 127.0.0.1 port (``--workers``/``--threads``)
   with ``DEBUG=false`` and, as docker-compose.yml runs it, Redis for the cache and sessions
   (``--redis-url``); the same server answers both workloads below.
3. Logs every annotator in once (session auth, CSRF), then for each concurrency level N:

   * baseline: N clients loop ``GET /healthz`` (one ``SELECT 1``) for ``--duration`` seconds;
   * app: N annotators loop ``GET /projects/<id>/annotate/`` (lease and render the next task)
     then POST its ranking form (a random permutation, sometimes a tie; expects a 302), for
     ``--duration`` seconds.

   Both use the same load generator: one process, asyncio, one keep-alive ``httpx.AsyncClient``
   an annotator. Each request's latency is recorded on its own ("next", "submit"); requests/s
   counts both together. After each level the database is checked: no task may hold more
   rankings (or rankings plus live leases) than its target.

Prints a table per level (requests/s, p50/p95/p99 in ms, errors), the ratio app rps / healthz
rps, whether the target (at 32 annotators: ratio >= 0.30 and p95 < 150 ms) is met, and a one-line
summary to paste. Measures; asserts nothing about timing. Every loop stops by itself; only
127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
HOST = "127.0.0.1"
PASSWORD = "bench-password-123"
TARGET_LEVEL = 32
TARGET_RATIO = 0.30
TARGET_P95_MS = 150.0

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ACTION_RE = re.compile(r'action="(/projects/\d+/tasks/\d+/ranking/)"')
RANK_RE = re.compile(r'name="rank-(\d+)"')

# Runs inside `manage.py shell -c`; formatted with the seed parameters.
SEED_SCRIPT = """
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from feedback_app.annotation.importing import check_records
from feedback_app.core.models import Membership, Project
from feedback_app.annotation.services import prompts_import

User = get_user_model()
n_users, n_tasks, k, overlap = {n_users}, {n_tasks}, {k}, {overlap}
project = Project.objects.create(
    name="bench", candidates_per_task=k, annotations_per_task=overlap,
    guidelines="Rank the **best** answer first. Ties are fine when two are equally good.",
)
hashed = make_password({password!r})  # hash once: PBKDF2 for each user would take seconds
users = User.objects.bulk_create(
    User(username=f"bench{{i:03d}}", password=hashed) for i in range(n_users)
)
Membership.objects.bulk_create(Membership(project=project, user=u) for u in users)
body = (
    "Here is a *candidate* answer with `code`, a list:\\n\\n- one\\n- two\\n\\n"
    "and a paragraph long enough to look like a real completion of a few sentences. " * 3
)
records = check_records(
    (
        (
            i + 1,
            {{
                "prompt": f"Prompt {{i}}: explain **topic {{i}}** in a few sentences.",
                "candidates": [
                    {{"text": f"Answer {{j}} to prompt {{i}}. {{body}}", "model": f"m{{j}}"}}
                    for j in range(k)
                ],
            }},
        )
        for i in range(n_tasks)
    ),
    k=k,
)
result = prompts_import(project=project, records=records)
print("BENCH_PROJECT", project.pk, result.tasks)
"""


# --------------------------------------------------------------------------------------------
# Setup: database, seed, server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def recreate_database(pg_url: str, name: str) -> None:
    """Drop and create `name`, connecting to the maintenance database ``postgres``."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"--db-name must be a plain identifier, got {name!r}")
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def drop_database(pg_url: str, name: str) -> None:
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url  # cache and sessions in Redis, as docker-compose.yml runs
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="bench",
        DEBUG="false",
        DJANGO_SETTINGS_MODULE="feedback_app.settings",
        LOG_LEVEL="WARNING",
    )
    return env


def migrate_and_seed(
    env: dict[str, str], *, n_users: int, n_tasks: int, k: int, overlap: int
) -> int:
    """Run migrations and the seed script; return the project id."""
    subprocess.run(
        [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    script = SEED_SCRIPT.format(
        n_users=n_users, n_tasks=n_tasks, k=k, overlap=overlap, password=PASSWORD
    )
    out = subprocess.run(
        [str(PYTHON), "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"BENCH_PROJECT (\d+) (\d+)", out)
    if match is None:
        raise SystemExit(f"seeding printed no project id:\n{out}")
    # Planner statistics as autovacuum would have them a minute after a real import.
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ANALYZE")
    return int(match.group(1))


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], *, wsgi: str, port: int, workers: int, threads: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start gunicorn, wait (bounded) until /healthz answers, stop it on exit."""
    cmd = [
        str(GUNICORN),
        wsgi,
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        # As every other gunicorn command line (README "Limits").
        "--limit-request-line",
        "8190",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"gunicorn exited early; see {log}:\n{log.read_text()}")
                try:
                    if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")
                time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and its direct children (gunicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds by pid of every process named ``postgres`` (the server and its backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if "(postgres)" in text:
                fields = text.rsplit(")", 1)[1].split()
                found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two `postgres_cpu` readings; backends that exited in between are lost."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def sanity_check(database_url: str, project_id: int) -> dict[str, int]:
    """Count tasks that broke the overlap: more rankings, or rankings + live leases, than wanted."""
    sql = """
        WITH r AS (SELECT task_id, count(*) AS n FROM annotation_ranking GROUP BY task_id),
             l AS (SELECT task_id, count(*) AS n FROM annotation_assignment
                   WHERE status = 'leased' AND expires_at > now() GROUP BY task_id)
        SELECT
          count(*) FILTER (WHERE coalesce(r.n, 0) > t.target_annotations),
          count(*) FILTER (WHERE coalesce(r.n, 0) + coalesce(l.n, 0) > t.target_annotations),
          count(*) FILTER (WHERE coalesce(r.n, 0) <> t.submitted_count),
          coalesce(sum(r.n), 0),
          count(*) FILTER (WHERE coalesce(r.n, 0) >= t.target_annotations)
        FROM annotation_task t
        LEFT JOIN r ON r.task_id = t.id
        LEFT JOIN l ON l.task_id = t.id
        WHERE t.project_id = %s
    """
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, (project_id,)).fetchone()
    assert row is not None
    keys = ("over_ranked", "over_slotted", "count_mismatch", "rankings", "tasks_full")
    return dict(zip(keys, (int(v) for v in row), strict=True))


# --------------------------------------------------------------------------------------------
# Load generator


@dataclass
class Recorder:
    """Latencies (seconds) by request kind, plus error counts and the measured window."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    exhausted: int = 0
    started: float = 0.0
    finished: float = 0.0

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail}")

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)


@dataclass(frozen=True)
class Stats:
    count: int
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list, in milliseconds."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index] * 1000


def stats(rec: Recorder, kinds: tuple[str, ...]) -> Stats:
    values = sorted(v for k in kinds for v in rec.latencies.get(k, []))
    return Stats(
        count=len(values),
        rps=len(values) / rec.elapsed,
        p50=percentile(values, 0.50),
        p95=percentile(values, 0.95),
        p99=percentile(values, 0.99),
        errors=sum(rec.errors.get(k, 0) for k in kinds),
    )


def new_client(base: str, n: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        follow_redirects=False,
    )


async def login(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/accounts/login/")
    match = CSRF_RE.search(page.text)
    if page.status_code != 200 or match is None:
        raise SystemExit(f"login page for {username}: HTTP {page.status_code}")
    resp = await client.post(
        "/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": match.group(1)},
    )
    if resp.status_code != 302 or "sessionid" not in client.cookies:
        raise SystemExit(f"login of {username} failed: HTTP {resp.status_code}")


async def healthz_loop(client: httpx.AsyncClient, until: float, rec: Recorder) -> None:
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        try:
            resp = await client.get("/healthz")
        except httpx.HTTPError as exc:
            rec.error("healthz", repr(exc))
            continue
        rec.add("healthz", time.perf_counter() - t0)
        if resp.status_code != 200:
            rec.error("healthz", f"HTTP {resp.status_code}")
        rec.finished = max(rec.finished, time.perf_counter())


def ranks_for(candidate_ids: list[str], rng: random.Random) -> dict[str, str]:
    """A random permutation of 1..K; one time in ten two candidates tie."""
    ranks = list(range(1, len(candidate_ids) + 1))
    rng.shuffle(ranks)
    if len(ranks) > 2 and rng.random() < 0.1:
        ranks[ranks.index(2)] = 1
    return {f"rank-{cid}": str(r) for cid, r in zip(candidate_ids, ranks, strict=True)}


async def annotator_loop(
    client: httpx.AsyncClient, project_id: int, until: float, rec: Recorder, rng: random.Random
) -> None:
    next_url = f"/projects/{project_id}/annotate/"
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        try:
            page = await client.get(next_url)
        except httpx.HTTPError as exc:
            rec.error("next", repr(exc))
            continue
        rec.add("next", time.perf_counter() - t0)
        rec.finished = max(rec.finished, time.perf_counter())
        if page.status_code != 200:
            rec.error("next", f"HTTP {page.status_code}")
            continue
        action, csrf = ACTION_RE.search(page.text), CSRF_RE.search(page.text)
        if action is None or csrf is None:
            rec.exhausted += 1  # "Nothing left to rank": the seed was too small for the run
            return
        data = ranks_for(RANK_RE.findall(page.text), rng)
        data["csrfmiddlewaretoken"] = csrf.group(1)
        if rng.random() < 0.2:
            data["rationale"] = "B reads better; A misses the point."
        t0 = time.perf_counter()
        try:
            resp = await client.post(action.group(1), data=data)
        except httpx.HTTPError as exc:
            rec.error("submit", repr(exc))
            continue
        rec.add("submit", time.perf_counter() - t0)
        rec.finished = max(rec.finished, time.perf_counter())
        if resp.status_code != 302 or not resp.headers.get("location", "").endswith(next_url):
            rec.error("submit", f"HTTP {resp.status_code} {resp.text[:200]!r}")


async def run_phase(
    clients: list[httpx.AsyncClient],
    kind: str,
    *,
    project_id: int,
    duration: float,
    warmup: float,
    seed: int,
) -> Recorder:
    """Run `kind` ("healthz" or "app") on every client: an unrecorded warm-up, then measure."""
    rec = Recorder()
    for measured, seconds in ((False, warmup), (True, duration)):
        if seconds <= 0:
            continue
        target = rec if measured else Recorder()
        target.started = time.perf_counter()
        until = target.started + seconds
        if kind == "healthz":
            jobs = [healthz_loop(c, until, target) for c in clients]
        else:
            jobs = [
                annotator_loop(c, project_id, until, target, random.Random(seed * 1000 + i))
                for i, c in enumerate(clients)
            ]
        await asyncio.gather(*jobs)
        if not measured:
            rec.errors.update(target.errors)
            rec.error_samples.extend(target.error_samples)
            rec.exhausted += target.exhausted
    return rec


@dataclass
class LevelResult:
    level: int
    healthz: Stats
    nxt: Stats
    submit: Stats
    app: Stats
    exhausted: int
    error_samples: list[str]
    sanity: dict[str, int]
    cpu: dict[str, dict[str, float]]  # phase -> {generator, gunicorn, postgres, other}

    @property
    def ratio(self) -> float:
        return self.app.rps / self.healthz.rps if self.healthz.rps else 0.0

    @property
    def app_p95(self) -> float:
        return max(self.nxt.p95, self.submit.p95)

    @property
    def has_errors(self) -> bool:
        return self.healthz.errors + self.app.errors > 0 or self.exhausted > 0


async def measure_level(
    clients: list[httpx.AsyncClient],
    level: int,
    args: argparse.Namespace,
    project_id: int,
    server_pid: int,
    database_url: str,
) -> LevelResult:
    cpu: dict[str, dict[str, float]] = {}
    recs: dict[str, Recorder] = {}
    for kind in ("healthz", "app"):
        gen0, srv0, pg0 = time.process_time(), process_tree_cpu(server_pid), postgres_cpu()
        busy0, tot0 = machine_busy()
        wall0 = time.perf_counter()
        recs[kind] = await run_phase(
            clients[:level],
            kind,
            project_id=project_id,
            duration=args.duration,
            warmup=args.warmup,
            seed=args.seed + level,
        )
        wall = time.perf_counter() - wall0
        busy1, tot1 = machine_busy()
        used = {
            "generator": (time.process_time() - gen0) / wall,
            "gunicorn": (process_tree_cpu(server_pid) - srv0) / wall,
            "postgres": cpu_delta(pg0, postgres_cpu()) / wall,
        }
        machine = (busy1 - busy0) / max(tot1 - tot0, 1) * (os.cpu_count() or 1)
        used["other"] = max(0.0, machine - sum(used.values()))
        cpu[kind] = used
    app = recs["app"]
    return LevelResult(
        level=level,
        healthz=stats(recs["healthz"], ("healthz",)),
        nxt=stats(app, ("next",)),
        submit=stats(app, ("submit",)),
        app=stats(app, ("next", "submit")),
        exhausted=app.exhausted,
        error_samples=recs["healthz"].error_samples + app.error_samples,
        sanity=sanity_check(database_url, project_id),
        cpu=cpu,
    )


# --------------------------------------------------------------------------------------------
# Report


def print_level(r: LevelResult) -> None:
    print(f"\n== {r.level} concurrent annotator(s) ==")
    head = ("count", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    print(f"{'request':<18}" + "".join(f"{h:>9}" for h in head))
    rows = (
        ("next (GET)", r.nxt),
        ("submit (POST)", r.submit),
        ("next + submit", r.app),
        ("healthz", r.healthz),
    )
    for name, s in rows:
        print(
            f"{name:<18}{s.count:>9}{s.rps:>9.1f}{s.p50:>9.1f}{s.p95:>9.1f}{s.p99:>9.1f}"
            f"{s.errors:>9}"
        )
    print(f"ratio app req/s / healthz req/s: {r.ratio:.2f}")
    for phase, used in r.cpu.items():
        parts = ", ".join(f"{name} {cores:.2f}" for name, cores in used.items())
        print(f"cpu cores during {phase}: {parts} (other = rest of the machine)")
    s = r.sanity
    print(
        f"db check: {s['rankings']} rankings, {s['tasks_full']} tasks full; over-ranked "
        f"{s['over_ranked']}, over-slotted {s['over_slotted']}, count mismatch "
        f"{s['count_mismatch']}"
    )
    if r.exhausted:
        print(f"WARNING: {r.exhausted} annotator(s) ran out of tasks; raise --tasks")
    if r.has_errors:
        print("FLAGGED: this level had errors:", *r.error_samples, sep="\n  ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds a phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds a phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads a worker")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks to seed")
    parser.add_argument("--k", type=int, default=4, help="candidates a task")
    parser.add_argument("--overlap", type=int, default=3, help="rankings wanted a task")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--db-name", default="bench_annotate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/9",
        help="REDIS_URL for the server (cache, sessions), as in docker-compose.yml; '' for none",
    )
    parser.add_argument(
        "--wsgi",
        default="feedback_app.wsgi",
        help="WSGI module for gunicorn (a scratch module on PYTHONPATH can try a patch)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: 200 tasks, 1 annotator for 1 s, no Redis; drops its database after",
    )
    args = parser.parse_args()
    if args.smoke:
        args.levels, args.duration, args.warmup, args.tasks = "1", 1.0, 0.0, 200
        args.workers, args.threads, args.redis_url = 1, 2, ""
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not levels or min(levels) < 1 or not 0 < args.duration <= 600:
        parser.error("levels must be positive and duration in (0, 600]")
    if not re.match(r"postgres(ql)?://[^/]*@?(127\.0\.0\.1|localhost)(:\d+)?$", args.pg_url):
        parser.error("--pg-url must point at 127.0.0.1 and name no database")

    try:
        return run(args, levels)
    finally:
        if args.smoke:
            drop_database(args.pg_url, args.db_name)


def run(args: argparse.Namespace, levels: list[int]) -> int:
    database_url = f"{args.pg_url}/{args.db_name}"
    env = server_env(database_url, args.redis_url)
    t0 = time.perf_counter()
    recreate_database(args.pg_url, args.db_name)
    project_id = migrate_and_seed(
        env, n_users=max(levels), n_tasks=args.tasks, k=args.k, overlap=args.overlap
    )
    print(
        f"seeded project {project_id}: {args.tasks} tasks, K={args.k}, overlap {args.overlap}, "
        f"{max(levels)} annotators ({time.perf_counter() - t0:.1f} s)"
    )
    port = free_port()
    config = (
        f"gunicorn {args.wsgi} --workers {args.workers} --threads {args.threads} --keep-alive 30 "
        f"(gthread if threads > 1), DEBUG=false, PostgreSQL CONN_MAX_AGE=60, "
        f"cache and sessions: {'Redis' if args.redis_url else 'per-process memory / database'}"
    )
    print(f"server: {config}; machine: {os.cpu_count()} cores shared with this generator")

    with tempfile.TemporaryDirectory(prefix="bench-annotate-") as tmp:
        log = Path(tmp) / "gunicorn.log"
        with gunicorn(
            env, wsgi=args.wsgi, port=port, workers=args.workers, threads=args.threads, log=log
        ) as server:
            results = asyncio.run(
                run_levels(args, levels, port, project_id, server.pid, database_url)
            )
        server_log = log.read_text(errors="replace").strip()
    if server_log:
        print("\ngunicorn log (last lines):", *server_log.splitlines()[-10:], sep="\n  ")
    return report(results, args)


async def run_levels(
    args: argparse.Namespace,
    levels: list[int],
    port: int,
    project_id: int,
    server_pid: int,
    database_url: str,
) -> list[LevelResult]:
    base = f"http://{HOST}:{port}"
    clients = [new_client(base, i) for i in range(max(levels))]
    try:
        sem = asyncio.Semaphore(4)  # PBKDF2 makes a login cost ~0.3 s of server CPU

        async def one(i: int) -> None:
            async with sem:
                await login(clients[i], f"bench{i:03d}")

        await asyncio.gather(*(one(i) for i in range(len(clients))))
        results = []
        for level in levels:
            result = await measure_level(clients, level, args, project_id, server_pid, database_url)
            print_level(result)
            results.append(result)
        return results
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def report(results: list[LevelResult], args: argparse.Namespace) -> int:
    print("\n== summary ==")
    print("| N | next+submit req/s | healthz req/s | ratio | next p95 | submit p95 | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.level} | {r.app.rps:.0f} | {r.healthz.rps:.0f} | {r.ratio:.2f} | "
            f"{r.nxt.p95:.0f} ms | {r.submit.p95:.0f} ms | "
            f"{r.app.errors + r.healthz.errors + r.exhausted} |"
        )
    target = next((r for r in results if r.level == TARGET_LEVEL), None)
    broken = any(r.sanity["over_ranked"] or r.sanity["over_slotted"] for r in results)
    flagged = any(r.has_errors for r in results)
    if target is None:
        verdict = f"target not evaluated (level {TARGET_LEVEL} not run)"
    else:
        met = target.ratio >= TARGET_RATIO and target.app_p95 < TARGET_P95_MS
        verdict = (
            f"target {'MET' if met else 'MISSED'} at {TARGET_LEVEL}: ratio {target.ratio:.2f} "
            f"(>= {TARGET_RATIO:.2f}), p95 {target.app_p95:.0f} ms (< {TARGET_P95_MS:.0f} ms)"
        )
    levels = "; ".join(
        f"N={r.level}: {r.app.rps:.0f}/{r.healthz.rps:.0f} req/s = {r.ratio:.2f}, "
        f"p95 next {r.nxt.p95:.0f} ms submit {r.submit.p95:.0f} ms"
        for r in results
    )
    print(
        f"\nSUMMARY bench/annotate.py gunicorn {args.wsgi} -w {args.workers} "
        f"--threads {args.threads}, "
        f"{args.duration:g} s/level, {args.tasks} tasks: {levels}; {verdict}"
        f"{'; ERRORS' if flagged else ''}{'; OVERLAP BROKEN' if broken else ''}"
    )
    return 1 if flagged or broken else 0


if __name__ == "__main__":
    sys.exit(main())
