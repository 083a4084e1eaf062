import json
import os
import subprocess
import sys
from pathlib import Path

from training.data import write_jsonl

REPO = Path(__file__).resolve().parents[2]


def _run(*args, cwd):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_generates_from_a_prompts_file(tiny_base_model, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"prompt": "A list"}, {"prompt": [{"role": "user", "content": "hi"}]}])
    out = _run(
        "generate",
        "--model",
        tiny_base_model,
        "--prompts",
        str(prompts),
        "--set",
        "num_samples=2",
        "--set",
        "max_new_tokens=4",
        "--out",
        str(tmp_path / "s.jsonl"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metrics"]["sequences"] == 4
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [len(r["samples"]) for r in rows] == [2, 2]


def test_cli_trains_dpo_from_a_pairs_file_with_a_progress_bar(tiny_base_model, toy_pairs, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, toy_pairs)
    out = _run(
        "train-dpo",
        "--policy",
        tiny_base_model,
        "--pairs",
        str(pairs),
        "--out",
        str(tmp_path / "p"),
        "--set",
        "epochs=1",
        "--set",
        "batch_size=4",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metrics"]["global_step"] == 2
    assert "dpo" in out.stderr and "2/2" in out.stderr  # the tqdm bar
    assert (tmp_path / "p" / "model.safetensors").exists()


def test_cli_rejects_a_bad_setting_before_any_work(tmp_path):
    out = _run(
        "train-dpo",
        "--policy",
        "x",
        "--pairs",
        "missing.jsonl",
        "--out",
        "o",
        "--set",
        "beta=-1",
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "beta: must be a number in (0, 10], got -1" in out.stderr
