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

FILL_SQL = """
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT i, '!', false, 'bench-' || i, '', '', '', i = 1, true, now() FROM generate_series(1, 3) i;
INSERT INTO annotation_project (id, name, guidelines, candidates_per_task, annotations_per_task,
                                rationale, created_at, updated_at)
VALUES (1, 'bench', '', {k}, 2, 'optional', now(), now());
INSERT INTO annotation_membership (project_id, user_id, role, created_at, updated_at)
SELECT 1, i, 'annotator', now(), now() FROM generate_series(2, 3) i;
INSERT INTO annotation_prompt (id, project_id, text, messages, content_hash, external_id, metadata,
                               created_at, updated_at)
SELECT i, 1, 'Explain, in a sentence or two, what happens in step ' || i || ' of the recipe.',
       NULL, md5(i::text) || md5((-i)::text), '', '{{}}', now(), now()
FROM generate_series(1, {n}) i;
INSERT INTO annotation_task (id, project_id, prompt_id, round, target_annotations,
                             submitted_count, created_at, updated_at)
SELECT i, 1, i, 1, 2, 2, now(), now() FROM generate_series(1, {n}) i;
INSERT INTO annotation_candidate (id, task_id, text, source, model_version_id, position,
                                  created_at, updated_at)
SELECT (i - 1) * {k} + j + 1, i,
       'Candidate ' || j || ' for step ' || i || ': mix the flour and water, then let it rest.',
       'policy-v1', NULL, j, now(), now()
FROM generate_series(1, {n}) i, generate_series(0, {k} - 1) j;
INSERT INTO annotation_assignment (id, task_id, annotator_id, status, leased_at, expires_at,
                                   display_order, created_at, updated_at)
SELECT (i - 1) * 2 + a - 1, i, a, 'submitted', now(), now(),
       jsonb_build_array((i-1)*{k}+1, (i-1)*{k}+2, (i-1)*{k}+3, (i-1)*{k}+4), now(), now()
FROM generate_series(1, {n}) i, generate_series(2, 3) a;
INSERT INTO annotation_ranking (id, task_id, annotator_id, assignment_id, groups, display_order,
                                rationale, all_bad, unsafe, time_spent_ms, payload_hash,
                                created_at, updated_at)
SELECT (i - 1) * 2 + a - 1, i, a, (i - 1) * 2 + a - 1,
       jsonb_build_array(jsonb_build_array((i-1)*{k}+1), jsonb_build_array((i-1)*{k}+2),
                         jsonb_build_array((i-1)*{k}+3), jsonb_build_array((i-1)*{k}+4)),
       jsonb_build_array((i-1)*{k}+1, (i-1)*{k}+2, (i-1)*{k}+3, (i-1)*{k}+4),
       '', false, false, 1000, md5(i::text), now(), now()
FROM generate_series(1, {n}) i, generate_series(2, 3) a;
"""
SEQUENCES = [
    ("auth_user", 3),
    ("annotation_project", 1),
    ("annotation_prompt", None),
    ("annotation_task", None),
    ("annotation_candidate", None),
    ("annotation_assignment", None),
    ("annotation_ranking", None),
]

# The ceiling: the same pairs, expanded and counted by PostgreSQL itself, as JSON lines.
COPY_SQL = """
COPY (
  WITH expanded AS (
    SELECT r.task_id, b.value::bigint AS better, w.value::bigint AS worse
    FROM annotation_ranking r
    JOIN annotation_task t ON t.id = r.task_id AND t.project_id = 1
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
  JOIN annotation_task t ON t.id = v.task_id
  JOIN annotation_prompt p ON p.id = t.prompt_id
  JOIN annotation_candidate cb ON cb.id = v.better
  JOIN annotation_candidate cw ON cw.id = v.worse
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

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds


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


def recreate_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def fill(url: str, n_tasks: int) -> float:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL_SQL.format(n=n_tasks, k=K))
        for table, last in SEQUENCES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"{last or f'(SELECT max(id) FROM {table})'})"
            )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def measure_copy(url: str, total: int) -> Result:
    with psycopg.connect(url) as conn, conn.cursor() as cur, RssSampler() as rss:
        started = time.perf_counter()
        first = None
        size = lines = 0
        marks: list[float] = []
        with cur.copy(COPY_SQL) as copy:
            for block in copy:
                if first is None:
                    first = time.perf_counter() - started
                size += len(block)
                lines += bytes(block).count(b"\n")
                while len(marks) < 4 and lines >= total * (len(marks) + 1) / 4:
                    marks.append(rss.now_mb())
        elapsed = time.perf_counter() - started
    return Result("COPY ... TO STDOUT", elapsed, first or 0, lines, size / 2**20,
                  (rss.peak - rss.base) / 2**20, marks)  # fmt: skip


def measure_app(url: str, total: int) -> Result:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback_app.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(pk=1))
    with RssSampler() as rss:
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
                  (rss.peak - rss.base) / 2**20, marks)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--db-name", default="bench_export")
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-fill", action="store_true", help="reuse the filled database")
    args = parser.parse_args()
    n_tasks = -(-args.pairs // PAIRS_PER_TASK)
    total = n_tasks * PAIRS_PER_TASK
    url = args.admin_url.rsplit("/", 1)[0] + "/" + args.db_name
    if not args.no_fill:
        recreate_database(args.admin_url, args.db_name)
        took = fill(url, n_tasks)
        print(
            f"filled {n_tasks:,} tasks, {2 * n_tasks:,} rankings ({total:,} pairs) in {took:.1f} s"
        )
    results = [measure_copy(url, total), measure_app(url, total)]
    print()
    print("| export | pairs | s | pairs/s | MB/s | first byte ms | peak RSS growth MB | "
          "RSS MB at 25/50/75/100 % |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        marks = " / ".join(f"{m:.0f}" for m in r.rss_at)
        print(f"| {r.name} | {r.pairs:,} | {r.seconds:.1f} | {r.rate:,.0f} | "
              f"{r.mbytes / r.seconds:.1f} | {r.first_byte_s * 1000:.0f} | "
              f"{r.peak_rss_growth_mb:.0f} | {marks} |")  # fmt: skip
    ceiling, app = results
    print(f"\napp / ceiling: {app.rate / ceiling.rate:.2f} (target >= 0.5)")
    if app.pairs != ceiling.pairs:
        print(f"WARNING: row counts differ: app {app.pairs:,}, COPY {ceiling.pairs:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
