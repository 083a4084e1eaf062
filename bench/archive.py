"""Project archive benchmark: export a big project, import it into an empty database, compare.

Run (from the repository root, PostgreSQL on 127.0.0.1:5432 with trust auth for ``postgres``)::

    .venv/bin/python bench/archive.py                # 20,000 tasks (K=4, overlap 2: 120,000 pairs)
    .venv/bin/python bench/archive.py --tasks 2000   # quicker
    .venv/bin/python bench/archive.py --smoke        # 100 tasks, for tests/test_bench_smoke.py

What it does:

1. Drops and recreates two databases, ``<db>_src`` and ``<db>_dst``, migrates both, and fills
   the source with bench/export.py's SQL fill (one project, tasks of K=4 candidates, each ranked
   by two annotators).
2. In a fresh process on the source: the pairs export's sha256, then `archive_write` to a file
   (the same generator `GET /api/v1/projects/<id>/export/` streams), timed, its peak RSS growth
   sampled every 20 ms.
3. In a fresh process on the empty destination: `archive_import` of that file, timed and
   sampled the same way, then the pairs export's sha256 of the new project.

Prints rows, archive size, seconds and peak RSS growth of each side, and whether the two pair
exports are the same bytes. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import PYTHON, ROOT, RssSampler, fill, recreate_database, setup_django  # noqa: E402


def _pairs_sha(project) -> tuple[str, int]:
    from feedback_app.preferences import rows

    digest, n = hashlib.sha256(), 0
    for chunk in rows.stream_jsonl(project, rows.RowQuery()):
        digest.update(chunk)
        n += chunk.count(b"\n")
    return digest.hexdigest(), n


def phase_export(url: str, path: Path) -> dict:
    setup_django(url)
    from feedback_app.core.models import Project
    from feedback_app.workspace.archive import archive_write

    project = Project.objects.get()
    sha, pairs = _pairs_sha(project)
    with RssSampler() as rss, path.open("wb") as out:
        started = time.perf_counter()
        size = archive_write(project, out)
        seconds = time.perf_counter() - started
    return {"sha": sha, "pairs": pairs, "seconds": seconds, "bytes": size,
            "rss_mb": (rss.peak - rss.base) / 2**20}  # fmt: skip


def phase_import(url: str, path: Path) -> dict:
    setup_django(url)
    from feedback_app.workspace.archive import archive_import

    with RssSampler() as rss, path.open("rb") as f:
        started = time.perf_counter()
        result = archive_import(file=f)
        seconds = time.perf_counter() - started
    sha, pairs = _pairs_sha(result.project)
    return {"sha": sha, "pairs": pairs, "seconds": seconds, "rows": result.rows,
            "rss_mb": (rss.peak - rss.base) / 2**20}  # fmt: skip


def _phase(name: str, url: str, path: Path) -> dict:
    out = subprocess.run(
        [PYTHON, __file__, "--phase", name, "--url", url, "--file", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"{name} phase failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _real_prompt_hashes(url: str) -> None:
    """The fill's prompt hashes are placeholders; an import checks them (annotation.importing.
    prompt_hash: sha256 of json.dumps({"text": text}), which to_json matches for ASCII text)."""
    import psycopg
    from django.apps import apps

    table = apps.get_model("annotation.Prompt")._meta.db_table
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {table} SET content_hash = encode(sha256(convert_to("
            "'{\"text\": ' || to_json(text)::text || '}', 'UTF8')), 'hex')"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--db-name", default="bench_archive")
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--smoke", action="store_true", help="100 tasks")
    parser.add_argument("--phase", choices=["export", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run = phase_export if args.phase == "export" else phase_import
        print(json.dumps(run(args.url, args.file)))
        return 0
    n_tasks = 100 if args.smoke else args.tasks
    parts = urlsplit(args.admin_url)
    urls = {}
    for side in ("src", "dst"):
        name = f"{args.db_name}_{side}"
        recreate_database(args.admin_url, name)
        urls[side] = urlunsplit(parts._replace(path=f"/{name}"))
    setup_django(urls["src"])  # the fill reads table names from the models
    fill_seconds = fill(urls["src"], n_tasks)
    _real_prompt_hashes(urls["src"])
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True,
                   env={**__import__("os").environ, "DATABASE_URL": urls["dst"]})  # fmt: skip
    path = ROOT / "var" / f"{args.db_name}.zip"
    path.parent.mkdir(exist_ok=True)
    exported = _phase("export", urls["src"], path)
    imported = _phase("import", urls["dst"], path)
    path.unlink()
    rows = imported["rows"]
    print(f"\n{n_tasks} tasks (filled in {fill_seconds:.1f} s): "
          f"{rows['candidates.jsonl']} candidates, {rows['rankings.jsonl']} rankings, "
          f"{exported['pairs']} pairs; archive {exported['bytes'] / 2**20:.1f} MiB\n")  # fmt: skip
    print("| step | seconds | rankings/s | peak RSS growth (MB) |")
    print("|---|---|---|---|")
    for label, r in (("export (archive_write)", exported), ("import (archive_import)", imported)):
        rate = rows["rankings.jsonl"] / r["seconds"] if r["seconds"] else 0
        print(f"| {label} | {r['seconds']:.2f} | {rate:,.0f} | {r['rss_mb']:.1f} |")
    same = exported["sha"] == imported["sha"] and exported["pairs"] == imported["pairs"]
    print(f"\npairs export before and after: {'identical' if same else 'DIFFERENT'} "
          f"(sha256 {exported['sha'][:16]}...)")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
