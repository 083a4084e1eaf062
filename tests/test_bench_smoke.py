"""Every bench script still runs: each `--smoke` mode end to end, as a subprocess.

Tiny sizes, no speed assertions: a schema, settings or API change that breaks a benchmark fails
here at once instead of the next time someone measures (bench/export.py broke that way once).
`bench/training.py --smoke` is tests/training/test_bench_training.py; `bench/annotate.py` has
its own. Scripts that bring their own embedded database and broker get a clean environment;
bench/export.py measures against PostgreSQL's COPY and runs only when the suite does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVERS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def run(script: str, *args: str, env: dict, timeout: float = 180) -> str:
    out = subprocess.run(
        [sys.executable, f"bench/{script}", "--smoke", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture
def embedded(tmp_path) -> dict:
    """This environment without servers: the scripts' own SQLite and filesystem broker."""
    env = {k: v for k, v in os.environ.items() if k not in SERVERS}
    env["VAR_DIR"] = str(tmp_path / "var")
    # The tiny model the training tests build, so no bench bootstraps its own.
    cache = os.environ.get("TRAINING_TEST_CACHE", str(REPO / ".cache" / "test-models"))
    env["BASE_MODEL_CACHE"] = cache
    return env


def test_shown_bench_smoke_times_both_render_paths(embedded):
    out = run("shown.py", env=embedded)
    assert "stored HTML" in out and "rendered on read" in out


def test_input_checks_bench_smoke_prints_its_table(embedded):
    out = run("input_checks.py", env=embedded)
    assert "API parser: ranking submit body" in out
    assert "JSONL import of 100 lines: decode only vs parse_jsonl" in out


def test_stages_bench_smoke_trains_and_evaluates_every_method_from_one_parent(embedded, tmp_path):
    out = run("stages.py", "--work", str(tmp_path / "work"), env=embedded)
    table = out.split("## Stages on one simulated preference")[1]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")]
    methods = ["sft", "dpo", "kto", "grpo", "rloo"]
    methods += ["grpo_guarded", "rloo_guarded", "bon_sft", "online_dpo"]
    assert [r[0].strip("| ") for r in rows[1:]] == methods
    assert all("->" in r[3] for r in rows[1:])  # parent -> child property rate, each evaluated
    assert all("[" in r[4] for r in rows[1:])  # the lexicon win rate with its interval
    guarded = [r for r in rows[1:] if "guarded" in r[0]]
    assert all(r[-1].strip("| ") for r in guarded)  # the detector's verdict, fired or not


def test_overoptimisation_bench_smoke_draws_best_of_n_and_grpo_against_sqrt_kl(embedded, tmp_path):
    out = run("overoptimisation.py", "--work", str(tmp_path / "work"), env=embedded)
    assert "## Best-of-n against the gold judge" in out
    for selector in ("proxy", "ensemble min", "ensemble mean - std"):
        assert f"| {selector}: gold (own score) |" in out
    for run_name in ("proxy, beta 0.04", "ensemble min, beta 0.04", "proxy, beta 0.0"):
        assert f"| {run_name}: detector |" in out
    assert (tmp_path / "work" / "smoke" / "overoptimisation.png").is_file()
    assert "one_call_cpu_s" in out  # the ensemble's cost against separate runs
    assert "floor_cpu_s" in out  # and against its floor, K x one member's training


def test_worker_faults_bench_smoke_runs_the_next_job_after_the_kill(embedded):
    out = run("worker_faults.py", env=embedded)
    assert "| filesystem | as shipped | runs | stops |" in out


def test_first_run_bench_smoke_gets_the_ranking_page_from_a_real_make_run(embedded):
    """Also issue 13's end-to-end proof: a real `make run` on a fresh var/ and an empty model
    cache serves a task on the ranking page (the base model's job is left to the worker)."""
    out = run("first_run.py", env=embedded, timeout=600)
    assert "first 200 of the ranking page with a task:" in out


@pytest.mark.slow
def test_loop_bench_smoke_runs_every_stage_of_a_turn(embedded):
    out = run("loop.py", env=embedded, timeout=600)
    for stage in ("generate round 1", "build snapshot", "train DPO", "promote", "generate round 2"):
        assert f"| {stage}" in out
    assert "One turn after the base model" in out


def test_rounds_bench_smoke_runs_both_arms_and_checks_the_targets(embedded):
    out = run("rounds.py", env=embedded, timeout=600)
    for arm in ("active", "random"):
        assert f"| {arm} | 2 |" in out  # a curve row of each arm's last round
    assert "| 2 | reward_margin |" in out  # round 2 of the active arm chose by the reward model
    assert "Target 1" in out and "Target 2" in out


@pytest.mark.postgres
def test_export_bench_smoke_streams_as_many_pairs_as_copy():
    url = os.environ["DATABASE_URL"]  # bench/export.py measures against PostgreSQL's COPY
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    db_name = f"{parts.path.lstrip('/')}_bench_smoke"  # beside this run's own databases
    env = {k: v for k, v in os.environ.items() if k not in SERVERS}
    out = run("export.py", "--admin-url", admin, "--db-name", db_name, env=env)
    assert "| GET .../pairs/ (app) | 600 |" in out and "| COPY ... TO STDOUT | 600 |" in out
    assert "app / ceiling" in out


@pytest.mark.postgres
def test_archive_bench_smoke_imports_the_same_pairs():
    url = os.environ["DATABASE_URL"]  # bench/archive.py fills PostgreSQL with export.py's SQL
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    db_name = f"{parts.path.lstrip('/')}_archive_smoke"
    env = {k: v for k, v in os.environ.items() if k not in SERVERS}
    out = run("archive.py", "--admin-url", admin, "--db-name", db_name, env=env)
    assert "pairs export before and after: identical" in out


def test_judge_bench_smoke_compares_both_arms_and_times_a_real_judge(embedded):
    out = run("judge.py", env=embedded)
    assert "judge triage / people alone" in out
    assert "| trusted |" in out  # the product's trust rule decides whether its votes count
    assert "| agreement |" in out and "| position_consistency |" in out
    assert "comparisons/s" in out and "| 12 | 12 |" in out  # batch 12: 2 prompts x 6 pairs


def test_distributed_bench_smoke_runs_one_rank_and_two_through_the_launcher(embedded):
    out = run("distributed.py", env=embedded, timeout=300)
    assert "throughput ratio, two ranks / one" in out
    assert "| 2 | 1 |" in out


def test_reward_curve_bench_smoke_trains_at_each_mark_through_the_products_jobs(embedded):
    out = run("reward_curve.py", "--variant", "min_steps=0", env=embedded, timeout=600)
    assert "| documented | defaults | 12 |" in out and "| documented | min_steps=0 | 24 |" in out
    assert "RewardTrainConfig of the defaults as launched" in out
