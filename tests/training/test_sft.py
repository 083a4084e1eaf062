import json
from pathlib import Path

import pytest

from training.config import GenerateConfig, SFTTrainConfig
from training.data import PairError
from training.evaluate import preference_accuracy_policy
from training.generate import generate
from training.models import load_tokenizer
from training.sft import train_sft


def _demos(pairs):
    """The chosen completion of each pair as a demonstration."""
    return [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]


@pytest.fixture(scope="module")
def sft_run(tiny_base_model, toy_pairs, tmp_path_factory):
    config = SFTTrainConfig(learning_rate=2e-3, epochs=3, batch_size=4)
    return train_sft(tiny_base_model, _demos(toy_pairs), tmp_path_factory.mktemp("sft"), config)


def test_sft_loss_falls_and_the_policy_moves_towards_the_demonstrations(
    sft_run, tiny_base_model, toy_pairs
):
    losses = [h["loss"] for h in sft_run.history if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5
    # Demonstrated completions gained log-probability relative to the base, the others did not.
    acc = preference_accuracy_policy(sft_run.output_dir, tiny_base_model, toy_pairs)
    assert acc["accuracy"] == 1.0


def test_sft_loss_is_on_the_completion_tokens_only(sft_run, tiny_base_model, toy_pairs):
    tok = load_tokenizer(tiny_base_model)
    # TRL appends eos to each completion; the prompt tokens are no target.
    expected = sum(len(tok(text=p["chosen"])["input_ids"]) + 1 for p in toy_pairs)
    assert sft_run.metrics["completion_tokens"] == expected
    assert sft_run.metrics["loss_on"] == "completion"


def test_sft_saves_config_metrics_and_a_plain_causal_lm(sft_run):
    out = Path(sft_run.output_dir)
    saved = json.loads((out / "training_config.json").read_text())
    assert saved["kind"] == "SFTTrainConfig" and saved["config"]["epochs"] == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped"] is False and len(metrics["history"]) >= 6
    assert metrics["metrics"]["rows_per_s"] > 0 and metrics["metrics"]["tokens_per_s"] > 0
    assert metrics["metrics"]["cpu_seconds"] > 0  # setup + training, for bench/training.py
    assert generate(out, ["A list"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


def test_chat_demonstrations_train_on_the_final_assistant_turn(tiny_base_model, tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Describe item {i}."},
                {"role": "assistant", "content": "It is useful."},
            ]
        }
        for i in range(4)
    ]
    result = train_sft(tiny_base_model, rows, tmp_path, SFTTrainConfig(epochs=1, batch_size=2))
    assert result.metrics["format"] == "messages" and result.metrics["global_step"] == 2
    tok = load_tokenizer(tiny_base_model)
    reply = tok.apply_chat_template(rows[0]["messages"], tokenize=False)
    reply = reply[len(tok.apply_chat_template(rows[0]["messages"][:1], tokenize=False)) :]
    # Only the assistant turn ("<|im_start|>assistant\nIt is useful.<|im_end|>\n" minus its
    # header, which the prompt's generation prompt holds) is a target.
    assert 0 < result.metrics["completion_tokens"] < 4 * len(tok(text=reply)["input_ids"])


def test_stopped_sft_saves_a_loadable_policy_and_says_so(tiny_base_model, toy_pairs, tmp_path):
    seen = []

    def stop_after_first(step, total, metrics):
        seen.append((step, total, "loss" in metrics))
        return True

    config = SFTTrainConfig(epochs=2, batch_size=2)
    result = train_sft(tiny_base_model, _demos(toy_pairs), tmp_path, config, stop_after_first)
    assert result.stopped and seen == [(1, 8, True)]
    assert json.loads((tmp_path / "metrics.json").read_text())["stopped"] is True
    assert generate(tmp_path, ["A"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("pairs", "rows[0]: preference pairs given to SFT, which takes SFT rows or chat SFT rows"),
        ([{"prompt": "a", "completion": " b"}], "rows: SFT needs at least 2 rows, got 1"),
        ([{"prompt": "a", "completion": " b"}, {"prompt": "c"}], "rows[1]: prompts given to SFT"),
        (
            [{"prompt": "a", "completion": " b"}, {"prompt": "c", "completion": 3}],
            "rows[1]['completion']: must be a string",
        ),
        ([{"prompt": "a", "completion": " "}] * 2, "rows[0]['completion']: must not be empty"),
        (
            [{"messages": [{"role": "user", "content": "hi"}]}] * 2,
            "rows[0]['messages']: must end with an assistant message",
        ),
    ],
)
def test_unusable_sft_rows_are_refused_by_name_before_any_model_loads(
    rows, message, toy_pairs, tmp_path
):
    rows = toy_pairs if rows == "pairs" else rows
    with pytest.raises(PairError) as info:
        train_sft(tmp_path / "no-such-model", rows, tmp_path / "out")
    assert str(info.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_speedups_do_not_change_the_logged_sft_values(tiny_base_model, toy_pairs, tmp_path):
    config = SFTTrainConfig(learning_rate=2e-3, epochs=1, batch_size=4)
    fast = train_sft(tiny_base_model, _demos(toy_pairs), tmp_path / "fast", config)
    plain = train_sft(tiny_base_model, _demos(toy_pairs), tmp_path / "plain", config, speedups=())
    assert fast.metrics["speedups"] and plain.metrics["speedups"] == []
    steps = [[h for h in run.history if "loss" in h] for run in (fast, plain)]
    assert len(steps[0]) == 2
    for ours, theirs in zip(*steps, strict=True):
        for key in theirs.keys() - {"elapsed_s"}:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5), key


def test_sft_batches_rows_of_similar_length_so_less_padding_is_computed(tiny_base_model, tmp_path):
    from training.sft import build_sft_trainer

    # 64 demonstrations of 1 to 40 words, in an order that mixes the lengths.
    words = [(7 * i) % 40 + 1 for i in range(64)]
    rows = [{"prompt": f"Q{i}:", "completion": " ".join(["good"] * n)} for i, n in enumerate(words)]

    def computed_and_real_tokens(group: bool) -> tuple[int, int]:
        config = SFTTrainConfig(batch_size=8, group_by_length=group)
        trainer, _ = build_sft_trainer(tiny_base_model, rows, tmp_path / str(group), config)
        batches = list(trainer.get_train_dataloader())
        assert all(len(b["input_ids"]) == 8 for b in batches) and len(batches) == 8
        return (
            sum(b["input_ids"].numel() for b in batches),
            sum(int(b["attention_mask"].sum()) for b in batches),
        )

    grouped, shuffled = computed_and_real_tokens(True), computed_and_real_tokens(False)
    assert grouped[1] == shuffled[1]  # every row once, either way
    assert grouped[0] < 0.85 * shuffled[0]  # measured 5,800 against 7,472
