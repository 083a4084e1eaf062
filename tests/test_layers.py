"""The import contract (pyproject.toml, import-linter) holds, and would catch an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_every_layer_imports_only_the_layers_below_it():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_import_against_the_direction_breaks_the_contract(tmp_path):
    """A copy of the code with one upward import (core -> finetuning) fails the same check."""
    for package in ("feedback_app", "training"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "feedback_app" / "core" / "upward.py").write_text(
        "from feedback_app.finetuning import jobs  # noqa: F401\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "feedback_app.core.upward -> feedback_app.finetuning.jobs" in result.stdout
