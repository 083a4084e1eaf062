import json
import os
import subprocess
import sys
from pathlib import Path

from training.cli import main
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
        "min_steps=0",  # one epoch exactly: the count below is the pairs' batches
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


def _main(capsys, *args):
    """The CLI in this process (seconds faster than a subprocess): status, stdout, stderr."""
    status = main(list(args))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_trains_sft_and_kto_from_rows_files_with_a_progress_bar(
    tiny_base_model, toy_pairs, tmp_path, capsys
):
    demos = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in toy_pairs]
    thumbs = [{**d, "label": i % 2 == 0} for i, d in enumerate(demos)]
    for command, rows, steps in (("train-sft", demos, 2), ("train-kto", thumbs, 2)):
        path = tmp_path / f"{command}.jsonl"
        write_jsonl(path, rows)
        status, stdout, stderr = _main(
            capsys,
            *(command, "--policy", tiny_base_model, "--rows", str(path)),
            *("--out", str(tmp_path / command), "--set", "batch_size=4"),
        )
        assert status == 0, stderr
        assert json.loads(stdout)["metrics"]["global_step"] == steps
        assert command[6:] in stderr and f"{steps}/{steps}" in stderr  # the tqdm bar
        assert (tmp_path / command / "model.safetensors").exists()


def test_cli_trains_grpo_against_a_reward_model(tiny_base_model, toy_pairs, tmp_path, capsys):
    from training.config import RewardTrainConfig
    from training.reward import train_reward

    train_reward(tiny_base_model, toy_pairs, tmp_path / "rm", RewardTrainConfig(epochs=1))
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"prompt": p["prompt"]} for p in toy_pairs[:4]])
    status, stdout, stderr = _main(
        capsys,
        *("train-grpo", "--policy", tiny_base_model, "--reward-model", str(tmp_path / "rm")),
        *("--prompts", str(prompts), "--out", str(tmp_path / "g")),
        *("--set", "max_completion_length=4", "--set", "num_generations=2"),
        *("--set", "batch_size=4"),
    )
    assert status == 0, stderr
    metrics = json.loads(stdout)["metrics"]
    assert metrics["global_step"] == 2 and metrics["last_kl"] is not None
    assert "grpo" in stderr and "2/2" in stderr


def test_cli_refuses_the_wrong_kind_of_rows_naming_the_row(toy_pairs, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, toy_pairs)
    args = ("--policy", "x", "--rows", str(pairs), "--out", str(tmp_path / "o"))
    status, _, stderr = _main(capsys, "train-sft", *args)
    assert status == 2 and "error: rows[0]: preference pairs given to SFT" in stderr
    args = ("--policy", "x", "--reward-model", "r", "--prompts", str(pairs), "--out", "o")
    status, _, stderr = _main(capsys, "train-rloo", *args, "--set", "num_generations=3")
    assert status == 2
    assert "error: batch_size: must be a multiple of num_generations=3, got 8" in stderr
