"""`bench/training.py --smoke`: the benchmark still runs after a change to what it drives."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_training_bench_smoke_mode_exits_zero_and_prints_its_tables(tiny_base_model, tmp_path):
    cmd = [sys.executable, "bench/training.py", "--smoke", "--model", tiny_base_model]
    cmd += ["--work", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "native bf16" in out.stdout  # what TRL's CPU defaults cost depends on it
    for title in (
        "## DPO speed-up ablation (paired)",
        "## Training (median per variant)",
        "## Generation",
        "## Stages against TRL defaults (paired)",
    ):
        assert title in out.stdout
    medians = out.stdout.split("## Training (median per variant)")[1].split("\n## ")[0]
    rows = [line.split(" | ")[0].strip("| ") for line in medians.splitlines() if line[:2] == "| "]
    assert rows[1:] == [
        "rm-ours",
        "rm-trl-default",
        "dpo-ours",
        "dpo-ours-lora",
        "dpo-trl-default",
        "dpo-plain",
    ]
    stages = out.stdout.split("## Stages against TRL defaults (paired)")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in stages.splitlines() if line[:2] == "| "]
    names = [r[0].strip("| ") for r in rows[1:]]
    assert names == ["sft", "kto", "grpo", "rloo", "sft-cpu", "grpo reward as path"]
    assert all(r[1] == "1" for r in rows[1:])  # one finished pair each
