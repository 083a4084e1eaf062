"""The import contract keeps preferences.quality free of Django and of the test-only references."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT = Path(sys.executable).with_name("lint-imports")


@pytest.mark.parametrize("module", ["django.db.models", "scipy.stats"])
def test_an_import_of_django_or_scipy_in_quality_breaks_the_contract(tmp_path, module):
    for package in ("feedback_app", "training"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    quality = tmp_path / "feedback_app" / "preferences" / "quality"
    (quality / "impure.py").write_text(f"import {module}  # noqa: F401\n")
    result = subprocess.run(
        [str(LINT), "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "preferences.quality is pure" in result.stdout
    assert f"feedback_app.preferences.quality.impure -> {module.split('.')[0]}" in result.stdout
