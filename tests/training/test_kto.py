import json
from pathlib import Path

import pytest

from training.config import ConfigError, GenerateConfig, KTOTrainConfig
from training.data import PairError
from training.evaluate import preference_accuracy_policy
from training.generate import generate
from training.kto import train_kto


def _thumbs(pairs):
    """Each pair as two unpaired rows: chosen thumbs up, rejected thumbs down (grouped)."""
    up = [{"prompt": p["prompt"], "completion": p["chosen"], "label": True} for p in pairs]
    down = [{"prompt": p["prompt"], "completion": p["rejected"], "label": False} for p in pairs]
    return up + down


@pytest.fixture(scope="module")
def kto_run(tiny_base_model, toy_pairs, tmp_path_factory):
    config = KTOTrainConfig(learning_rate=2e-3, epochs=3, batch_size=4)
    return train_kto(tiny_base_model, _thumbs(toy_pairs), tmp_path_factory.mktemp("kto"), config)


def test_kto_loss_falls_and_the_policy_prefers_thumbs_up(kto_run, tiny_base_model, toy_pairs):
    losses = [h["loss"] for h in kto_run.history if "loss" in h]
    assert losses[0] == pytest.approx(0.5, abs=1e-3)  # policy == reference at step 1
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.1
    acc = preference_accuracy_policy(kto_run.output_dir, tiny_base_model, toy_pairs)
    assert acc["accuracy"] == 1.0 and acc["mean_margin"] > 0


def test_kto_reports_its_reference_and_rows_and_saves_a_plain_causal_lm(kto_run):
    m = kto_run.metrics
    assert m["reference"] == "precomputed once"
    assert (m["rows"], m["rows_desirable"], m["rows_undesirable"]) == (16, 8, 8)
    assert m["rows_per_s"] > 0 and m["tokens_per_s"] > 0 and m["cpu_seconds"] > 0
    assert any("kl" in h for h in kto_run.history)
    out = Path(kto_run.output_dir)
    assert json.loads((out / "training_config.json").read_text())["kind"] == "KTOTrainConfig"
    assert generate(out, ["A list"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


def test_rows_grouped_by_label_are_mixed_within_batches(kto_run):
    """TRL reads KTO rows in order: unshuffled, every batch of 4 would hold one label only."""
    chosen = [h for h in kto_run.history if "rewards/chosen" in h]
    rejected = [h for h in kto_run.history if "rewards/rejected" in h]
    assert {h["step"] for h in chosen} & {h["step"] for h in rejected}


def test_stopped_kto_still_saves_a_loadable_policy(tiny_base_model, toy_pairs, tmp_path):
    result = train_kto(
        tiny_base_model,
        _thumbs(toy_pairs),
        tmp_path,
        KTOTrainConfig(epochs=2, batch_size=4),
        progress=lambda step, total, m: step >= 2,
    )
    assert result.stopped and result.metrics["global_step"] == 2
    assert generate(tmp_path, ["A"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("pairs", "rows[0]: preference pairs given to KTO, which takes KTO rows"),
        ([{"prompt": "a", "completion": " b"}] * 2, "rows[0]: SFT rows given to KTO"),
        ([{"prompt": "a", "completion": " b", "label": True}], "rows: KTO needs at least 2 rows"),
        (
            [{"prompt": "a", "completion": " b", "label": True}] * 2
            + [{"prompt": "a", "completion": " b", "label": "yes"}],
            "rows[2]['label']: must be true or false, got 'yes'",
        ),
    ],
)
def test_unusable_kto_rows_are_refused_by_name_before_any_model_loads(
    rows, message, toy_pairs, tmp_path
):
    rows = toy_pairs if rows == "pairs" else rows
    with pytest.raises(PairError) as info:
        train_kto(tmp_path / "no-such-model", rows, tmp_path / "out")
    assert str(info.value).startswith(message)


def test_kto_needs_two_rows_per_batch_for_its_kl_estimate():
    with pytest.raises(ConfigError, match=r"^batch_size: must be an integer in \[2, 1024\]"):
        KTOTrainConfig(batch_size=1)


def test_speedups_do_not_change_the_logged_kto_values(tiny_base_model, toy_pairs, tmp_path):
    config = KTOTrainConfig(learning_rate=2e-3, epochs=1, batch_size=4)
    fast = train_kto(tiny_base_model, _thumbs(toy_pairs), tmp_path / "fast", config)
    plain = train_kto(tiny_base_model, _thumbs(toy_pairs), tmp_path / "p", config, speedups=())
    assert fast.metrics["speedups"] and plain.metrics["speedups"] == []
    steps = [[h for h in run.history if "loss" in h] for run in (fast, plain)]
    assert len(steps[0]) == 4
    for ours, theirs in zip(*steps, strict=True):
        for key in theirs.keys() - {"elapsed_s"}:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5), key
