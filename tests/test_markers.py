"""The markers select what they name: one rule in tests/conftest.py decides them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mark_by_rule

REPO = Path(__file__).resolve().parents[1]


class _Item:
    """Just what the rule reads of a collected test."""

    def __init__(self, fixturenames=(), marks=()):
        self.fixturenames = list(fixturenames)
        self.marks = list(marks)

    def add_marker(self, mark):
        self.marks.append(mark.mark if hasattr(mark, "mark") else mark)

    def get_closest_marker(self, name):
        return next((m for m in self.marks if m.name == name), None)


def test_a_test_that_drives_chromium_is_marked_browser_whatever_its_file_says():
    drives, plain = _Item(fixturenames=["browser", "live_server"]), _Item(fixturenames=["db"])
    mark_by_rule([drives, plain], on_postgres=False)
    assert drives.get_closest_marker("browser") is not None
    assert plain.get_closest_marker("browser") is None


def test_a_postgres_test_is_skipped_with_its_reason_only_off_postgresql():
    item = _Item(marks=[pytest.mark.postgres.mark])
    mark_by_rule([item], on_postgres=False)
    assert item.get_closest_marker("skip").kwargs["reason"].startswith("needs DATABASE_URL")
    on_pg = _Item(marks=[pytest.mark.postgres.mark])
    mark_by_rule([on_pg], on_postgres=True)
    assert on_pg.get_closest_marker("skip") is None


def test_dash_m_postgres_selects_the_postgresql_only_tests():
    files = ["tests/annotation/test_handout.py", "tests/finetuning/test_autopilot.py",
             "tests/test_bench_smoke.py"]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "postgres", *files],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    selected = [line for line in out.stdout.splitlines() if "::" in line]
    assert {line.split("::")[0] for line in selected} == set(files), out.stdout[-2000:]
    assert len(selected) == 4
