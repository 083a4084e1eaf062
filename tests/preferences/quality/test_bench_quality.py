"""`bench/quality.py --smoke`: the benchmark still runs after a change to what it times."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_quality_bench_smoke_mode_exits_zero_and_times_every_figure_and_page():
    out = subprocess.run(
        [sys.executable, "bench/quality.py", "--smoke"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "## Quality figures (600 rankings, K=4, 20 annotators, overlap 3)" in out.stdout
    pure, _, django = out.stdout.partition("## Quality in the app")
    rows = [line.split(" | ")[0].strip("| ") for line in pure.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        "pairwise agreement",
        "Kendall tau-b (mean)",
        "Krippendorff alpha (ordinal)",
        "annotator reliability + flags",
        "comparisons from rankings",
        "Bradley-Terry + 10 bootstrap fits",
        "head-to-head win matrix",
        "vote counts per task pair",
        "reward-model accuracy",
        "review queue",
        "**every figure**",
    ]
    assert "refresh every figure from the database:" in django
    pages = [
        line.split(" | ")[0].strip("| ") for line in django.splitlines() if line.startswith("| ")
    ]
    assert pages[1:] == [
        "ranking page",
        "quality/agreement",
        "quality/reliability",
        "quality/leaderboard",
        "quality/progress",
        "quality/reward_models",
        "quality/judges",
        "API quality report",
    ]
