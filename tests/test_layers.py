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


def _copy(tmp_path: Path) -> Path:
    """The code and the contracts, copied, for a test to break."""
    for package in ("feedback_app", "training"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_import_against_the_direction_breaks_the_contract(tmp_path):
    """A copy of the code with one upward import (core -> finetuning) fails the same check."""
    _copy(tmp_path)
    (tmp_path / "feedback_app" / "core" / "upward.py").write_text(
        "from feedback_app.finetuning import jobs  # noqa: F401\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "feedback_app.core.upward -> feedback_app.finetuning.jobs" in result.stdout


def test_a_lazy_import_of_the_task_from_the_job_services_breaks_the_finetuning_contract(tmp_path):
    """The cycle jobs -> tasks -> runners -> services -> jobs, once hidden by an import inside a
    function, fails the check: an import in a function body counts like any other."""
    jobs = _copy(tmp_path) / "feedback_app" / "finetuning" / "jobs.py"
    jobs.write_text(
        jobs.read_text()
        + "\n\ndef _enqueue_by_import(job):\n"
        + "    from .tasks import run_job  # noqa: PLC0415\n\n"
        + "    run_job.delay(job.pk)\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "feedback_app.finetuning.jobs -> feedback_app.finetuning.tasks" in result.stdout


def test_a_finetuning_module_outside_every_layer_breaks_the_finetuning_contract(tmp_path):
    """A new module must be given its layer: one that is not could carry an upward import."""
    (_copy(tmp_path) / "feedback_app" / "finetuning" / "helpers.py").write_text("X = 1\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "feedback_app.finetuning.helpers" in result.stdout


def test_an_autopilot_step_table_that_reads_the_engine_breaks_the_autopilot_contract(tmp_path):
    """Inside the autopilot package the vocabulary stands at the bottom: steps -> engine fails."""
    steps = _copy(tmp_path) / "feedback_app" / "finetuning" / "autopilot" / "steps.py"
    steps.write_text(steps.read_text() + "\nfrom . import engine  # noqa: E402, F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert (
        "feedback_app.finetuning.autopilot.steps -> feedback_app.finetuning.autopilot.engine"
        in " ".join(result.stdout.split())  # unwrapped
    )


def test_a_runner_helper_that_reads_a_workflow_breaks_the_runners_contract(tmp_path):
    """The runners' shared helpers stand below every workflow: common -> generation fails."""
    common = _copy(tmp_path) / "feedback_app" / "finetuning" / "runners" / "common.py"
    common.write_text(common.read_text() + "\nfrom . import generation  # noqa: E402, F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert (
        "feedback_app.finetuning.runners.common -> feedback_app.finetuning.runners.generation"
        in " ".join(result.stdout.split())  # unwrapped
    )


def _plant(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """A copy of the code with `line` appended to `module` (a dotted name), linted."""
    path = _copy(tmp_path).joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402, F401\n")
    return _lint(tmp_path)


def _unwrapped(result: subprocess.CompletedProcess) -> str:
    """The report with its line wrapping undone (long names wrap at 80 columns)."""
    return " ".join(result.stdout.split())


def test_the_pure_ranking_rules_importing_the_handout_break_the_annotation_contract(tmp_path):
    """annotation/rankings.py is a pure module at the bottom: it may not reach the hand-out."""
    result = _plant(tmp_path, "feedback_app.annotation.rankings", "from . import handout")
    assert result.returncode != 0
    expected = "feedback_app.annotation.rankings -> feedback_app.annotation.handout"
    assert expected in _unwrapped(result)


def test_pairs_importing_the_rows_pipeline_break_the_preferences_contract(tmp_path):
    """preferences/pairs.py (pure) under the rows pipeline built on it."""
    result = _plant(tmp_path, "feedback_app.preferences.pairs", "from . import rows")
    assert result.returncode != 0
    expected = "feedback_app.preferences.pairs -> feedback_app.preferences.rows"
    assert expected in _unwrapped(result)


def test_a_serializer_importing_a_view_breaks_the_api_contract(tmp_path):
    """Serializers sit under the views that use them, never the other way round."""
    line = "from ..views import annotation"
    result = _plant(tmp_path, "feedback_app.api.serializers.common", line)
    assert result.returncode != 0
    expected = "feedback_app.api.serializers.common -> feedback_app.api.views"
    assert expected in _unwrapped(result)


def test_the_workspace_importing_the_loop_breaks_the_layers_contract(tmp_path):
    """The workspace sits under finetuning: the archive gets rounds handed in, not imported."""
    line = "from feedback_app.finetuning.models import Round"
    result = _plant(tmp_path, "feedback_app.workspace.archive.format", line)
    assert result.returncode != 0
    expected = "feedback_app.workspace.archive.format -> feedback_app.finetuning.models"
    assert expected in _unwrapped(result)


def test_a_migration_importing_upward_breaks_the_layers_contract(tmp_path):
    """No escape for migrations any more: one that reached up would be caught."""
    line = "from feedback_app.finetuning import jobs"
    result = _plant(tmp_path, "feedback_app.core.migrations.0001_initial", line)
    assert result.returncode != 0
    expected = "feedback_app.core.migrations.0001_initial -> feedback_app.finetuning.jobs"
    assert expected in _unwrapped(result)
