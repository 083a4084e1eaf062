"""`bench/annotate.py --smoke`: the benchmark still runs after a change to what it drives."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")


@pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"), reason="the bench drives PostgreSQL (the PG pass)"
)
def test_annotate_bench_smoke_mode_exits_zero_and_prints_its_tables():
    server = re.sub(r"/[^/]*$", "", DATABASE_URL)  # postgres://user@host:port, no database
    db_name = re.sub(r"\W", "_", f"{DATABASE_URL.rsplit('/', 1)[1]}_bench_smoke").lower()
    cmd = [sys.executable, "bench/annotate.py", "--smoke", "--pg-url", server]
    cmd += ["--db-name", db_name]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for expected in ("== 1 concurrent annotator(s) ==", "next (GET)", "== summary ==", "| 1 |"):
        assert expected in out.stdout
