"""Pairs export benchmark: stream 1M preference pairs from PostgreSQL through the real view.

Run (from the repository root, PostgreSQL on 127.0.0.1:5432 with trust auth for ``postgres``)::

    .venv/bin/python bench/export.py                 # 1M pairs (166,667 tasks, K=4, overlap 2)
    .venv/bin/python bench/export.py --pairs 100000  # a quicker run

What it does:

1. Drops and recreates the database ``bench_export`` (``--db-name``), runs ``migrate``, and fills
   one project with SQL (``INSERT ... SELECT generate_series``, not the ORM): tasks of K=4
   candidates, each ranked by two annotators who agree, so each task gives 6 pairs.
2. Ceiling: the database's own ``COPY (SELECT ...) TO STDOUT`` of the same pair rows (pairs
   expanded from the stored groups and counted in SQL, joined to prompt and candidate text,
   one JSON object a row, same order), read with psycopg's copy.
3. App: ``GET /api/v1/projects/<id>/pairs/`` through Django (middleware, auth, the view, the
   streaming generator), consumed chunk by chunk in this process, as a WSGI server would.
   A thread samples this process's RSS every 20 ms.

Prints pairs/s, MB/s, time to first byte and peak RSS growth for both, the ratio app/ceiling,
and RSS at 25/50/75/100 % of the export (flat memory shows as equal numbers). Measures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
K = 4
PAIRS_PER_TASK = K * (K - 1) // 2

# What the bench sets, per model and field (attname); every other column of the model gets its
# type's empty value (see `_empty`), so a column added later cannot break the fill. Columns and
# table names come from the models' `_meta`, never from a hand-written list.
# `i` runs over tasks, `j` over a task's candidates, `a` over the two annotators (ids 2 and 3).
ROWS = [
    ("auth.User", "generate_series(1, 3) i", {
        "id": "i", "password": "'!'", "username": "'bench-' || i", "is_staff": "i = 1",
        "is_superuser": "false", "is_active": "true",
    }),
    ("core.Project", "generate_series(1, 1) i", {
        "id": "1", "name": "'bench'", "candidates_per_task": "{k}", "annotations_per_task": "2",
        "rationale": "'optional'",
    }),
    ("core.Membership", "generate_series(2, 3) i", {
        "project_id": "1", "user_id": "i", "role": "'annotator'",
    }),
    ("annotation.Prompt", "generate_series(1, {n}) i", {
        "id": "i", "project_id": "1",
        "text": "'Explain, in a sentence or two, what happens in step ' || i || ' of the recipe.'",
        "messages": "NULL", "content_hash": "md5(i::text) || md5((-i)::text)",
    }),
    ("annotation.Task", "generate_series(1, {n}) i", {
        "id": "i", "project_id": "1", "prompt_id": "i", "round": "1", "target_annotations": "2",
        "submitted_count": "2",
    }),
    ("annotation.Candidate", "generate_series(1, {n}) i, generate_series(0, {k} - 1) j", {
        "id": "(i - 1) * {k} + j + 1", "task_id": "i",
        "text": "'Candidate ' || j || ' for step ' || i || ': mix the flour and water, then rest.'",
        "source": "'policy-v1'", "model_version_id": "NULL", "position": "j",
    }),
    ("annotation.Assignment", "generate_series(1, {n}) i, generate_series(2, 3) a", {
        "id": "(i - 1) * 2 + a - 1", "task_id": "i", "annotator_id": "a", "status": "'submitted'",
        "display_order": "{order}",
    }),
    ("annotation.Ranking", "generate_series(1, {n}) i, generate_series(2, 3) a", {
        "id": "(i - 1) * 2 + a - 1", "task_id": "i", "annotator_id": "a",
        "assignment_id": "(i - 1) * 2 + a - 1", "display_order": "{order}",
        "groups": "jsonb_build_array(jsonb_build_array((i-1)*{k}+1),"
        " jsonb_build_array((i-1)*{k}+2), jsonb_build_array((i-1)*{k}+3),"
        " jsonb_build_array((i-1)*{k}+4))",
        "time_spent_ms": "1000", "payload_hash": "md5(i::text)",
    }),
]  # fmt: skip
ORDER = "jsonb_build_array((i-1)*{k}+1, (i-1)*{k}+2, (i-1)*{k}+3, (i-1)*{k}+4)"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text.replace("'", "''").replace("{", "{{").replace("}", "}}") + "'"


def _empty(field) -> str:
    """SQL for a column the bench does not set: the field's default, else its type's empty value."""
    from django.db import models

    if field.has_default():
        value = field.get_default()
        if isinstance(field, models.JSONField) or isinstance(value, bool | int | float | str):
            return _literal(value)
    if field.null:
        return "NULL"
    if isinstance(field, models.JSONField):
        return "'{{}}'"
    if isinstance(field, models.DateTimeField):
        return "now()"
    if isinstance(field, models.BooleanField):
        return "false"
    if isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
        return "0"
    if isinstance(field, models.CharField | models.TextField):
        return "''"
    raise SystemExit(f"bench/export.py: no fill value for {field.model.__name__}.{field.name}")


def fill_statements(n_tasks: int) -> list[tuple[str, str]]:
    """(table, INSERT ... SELECT) per model, columns taken from the model's `_meta`."""
    from django.apps import apps

    out = []
    for label, source, given in ROWS:
        model = apps.get_model(label)
        # An id the bench does not set is left to its sequence.
        fields = [f for f in model._meta.concrete_fields if f.attname in given or not f.primary_key]
        unknown = set(given) - {f.attname for f in fields}
        if unknown:
            raise SystemExit(f"bench/export.py: {label} has no field {sorted(unknown)}")
        cols = ", ".join(f'"{f.column}"' for f in fields)
        exprs = ", ".join(given.get(f.attname) or _empty(f) for f in fields)
        sql = f"INSERT INTO {model._meta.db_table} ({cols}) SELECT {exprs} FROM {source}"
        out.append((model._meta.db_table, sql.format(n=n_tasks, k=K, order=ORDER.format(k=K))))
    return out


# The ceiling: the same pairs, expanded and counted by PostgreSQL itself, as JSON lines.
COPY_SQL = """
COPY (
  WITH expanded AS (
    SELECT r.task_id, b.value::bigint AS better, w.value::bigint AS worse
    FROM {Ranking} r
    JOIN {Task} t ON t.id = r.task_id AND t.project_id = 1
    CROSS JOIN LATERAL jsonb_array_elements(r.groups) WITH ORDINALITY AS gi(g, i)
    CROSS JOIN LATERAL jsonb_array_elements(r.groups) WITH ORDINALITY AS gj(g, j)
    CROSS JOIN LATERAL jsonb_array_elements_text(gi.g) AS b
    CROSS JOIN LATERAL jsonb_array_elements_text(gj.g) AS w
    WHERE gi.i < gj.j
  ), votes AS (
    SELECT task_id, better, worse, count(*) AS n FROM expanded GROUP BY task_id, better, worse
  )
  SELECT json_build_object('chosen', cb.text, 'prompt', p.text, 'rejected', cw.text)
  FROM votes v
  JOIN {Task} t ON t.id = v.task_id
  JOIN {Prompt} p ON p.id = t.prompt_id
  JOIN {Candidate} cb ON cb.id = v.better
  JOIN {Candidate} cw ON cw.id = v.worse
  ORDER BY v.task_id, least(v.better, v.worse), greatest(v.better, v.worse)
) TO STDOUT
"""


@dataclass
class Result:
    name: str
    seconds: float
    first_byte_s: float
    pairs: int
    mbytes: float
    peak_rss_growth_mb: float
    rss_at: list[float]
    cpu_s: float = float("nan")  # this process + its PostgreSQL backend: what load cannot inflate

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds


class CpuClock:
    """CPU seconds of this process and of one PostgreSQL backend (same machine), while open.

    Wall time on a shared machine measures the neighbours too; CPU time does much less.
    The backend's is NaN when its process cannot be read (another host, another user).
    """

    def __init__(self, backend_pid: int):
        try:
            self.backend: psutil.Process | None = psutil.Process(backend_pid)
            self.backend.cpu_times()
        except (psutil.Error, OSError):
            self.backend = None

    def _now(self) -> float:
        try:
            server = sum(self.backend.cpu_times()[:2]) if self.backend else float("nan")
        except psutil.Error:  # the backend went away: the figure would be wrong
            server = float("nan")
        return time.process_time() + server

    def __enter__(self) -> CpuClock:
        self.start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self._now() - self.start


class RssSampler:
    """This process's RSS every `interval` s, in a thread; `peak` is the highest seen."""

    def __init__(self, interval: float = 0.02):
        self.proc = psutil.Process()
        self.interval = interval
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def now_mb(self) -> float:
        return self.proc.memory_info().rss / 2**20

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def setup_django(url: str) -> None:
    """The app, on the bench database (connections open lazily, after the database exists)."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback_app.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def copy_sql() -> str:
    """COPY_SQL with the models' table names."""
    from django.apps import apps

    names = {
        m: apps.get_model(f"annotation.{m}")._meta.db_table
        for m in ("Ranking", "Task", "Prompt", "Candidate")
    }
    return COPY_SQL.format(**names)


def recreate_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def fill(url: str, n_tasks: int) -> float:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table, sql in fill_statements(n_tasks):
            conn.execute(sql)
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def measure_copy(url: str, total: int) -> Result:
    with psycopg.connect(url) as conn, conn.cursor() as cur, RssSampler() as rss:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        cpu = CpuClock(pid).__enter__()
        started = time.perf_counter()
        first = None
        size = lines = 0
        marks: list[float] = []
        with cur.copy(copy_sql()) as copy:
            for block in copy:
                if first is None:
                    first = time.perf_counter() - started
                size += len(block)
                lines += bytes(block).count(b"\n")
                while len(marks) < 4 and lines >= total * (len(marks) + 1) / 4:
                    marks.append(rss.now_mb())
        elapsed = time.perf_counter() - started
        cpu.__exit__()
    return Result("COPY ... TO STDOUT", elapsed, first or 0, lines, size / 2**20,
                  (rss.peak - rss.base) / 2**20, marks, cpu.seconds)  # fmt: skip


def measure_app(url: str, total: int) -> Result:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(pk=1))
    with connection.cursor() as cursor:  # the connection the view will use (one per thread)
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with RssSampler() as rss, CpuClock(pid) as cpu:
        started = time.perf_counter()
        response = client.get("/api/v1/projects/1/pairs/")
        assert response.status_code == 200, response.status_code
        first = None
        size = lines = 0
        marks: list[float] = []
        for chunk in response.streaming_content:
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            while len(marks) < 4 and lines >= total * (len(marks) + 1) / 4:
                marks.append(rss.now_mb())
        response.close()
        elapsed = time.perf_counter() - started
    return Result("GET .../pairs/ (app)", elapsed, first or 0, lines, size / 2**20,
                  (rss.peak - rss.base) / 2**20, marks, cpu.seconds)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--db-name", default="bench_export")
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-fill", action="store_true", help="reuse the filled database")
    parser.add_argument("--repeat", type=int, default=1, help="measure both exports N times")
    parser.add_argument(
        "--smoke", action="store_true", help="600 pairs, drop the database after: runs, no speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.pairs = 600
    n_tasks = -(-args.pairs // PAIRS_PER_TASK)
    total = n_tasks * PAIRS_PER_TASK
    url = args.admin_url.rsplit("/", 1)[0] + "/" + args.db_name
    setup_django(url)
    if not args.no_fill:
        recreate_database(args.admin_url, args.db_name)
        took = fill(url, n_tasks)
        print(
            f"filled {n_tasks:,} tasks, {2 * n_tasks:,} rankings ({total:,} pairs) in {took:.1f} s"
        )
    try:
        ok = all(_run_once(url, total) for _ in range(args.repeat))
    finally:
        if args.smoke:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {args.db_name} WITH (FORCE)")
    return 0 if ok else 1


def _run_once(url: str, total: int) -> bool:
    """One measurement of both exports; prints the table; False if their row counts differ."""
    results = [measure_copy(url, total), measure_app(url, total)]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average {load}")
    print("| export | pairs | s | pairs/s | MB/s | first byte ms | peak RSS growth MB | "
          "RSS MB at 25/50/75/100 % | CPU s (client + server) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        marks = " / ".join(f"{m:.0f}" for m in r.rss_at)
        print(f"| {r.name} | {r.pairs:,} | {r.seconds:.2f} | {r.rate:,.0f} | "
              f"{r.mbytes / r.seconds:.1f} | {r.first_byte_s * 1000:.0f} | "
              f"{r.peak_rss_growth_mb:.0f} | {marks} | {r.cpu_s:.1f} |")  # fmt: skip
    ceiling, app = results
    print(f"\napp / ceiling: {app.rate / ceiling.rate:.2f} (target >= 0.6); "
          f"by CPU time: {ceiling.cpu_s / app.cpu_s:.2f}")  # fmt: skip
    if app.pairs != ceiling.pairs or app.pairs != total:
        print(f"ERROR: row counts differ: app {app.pairs:,}, COPY {ceiling.pairs:,}, {total:,}")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
