"""The stage table (training/stages.py) is the one list of training stages the CLI reads."""

from __future__ import annotations

import doctest

import pytest

from training import cli, stages


def _commands() -> set[str]:
    parser = cli.build_parser()
    return set(parser._subparsers._group_actions[0].choices)  # argparse keeps them here


def test_the_cli_has_one_train_command_a_stage_and_no_other():
    trains = {name for name in _commands() if name.startswith("train-")}
    assert trains == {stage.command for stage in stages.stage_list()}
    assert trains == {
        f"train-{n}"
        for n in (
            "reward",
            "dpo",
            "sft",
            "kto",
            "grpo",
            "rloo",
            "ensemble",
            "best_of_n",
            "online_dpo",
        )
    }


def test_a_registered_stage_is_gone_after_its_block_and_a_name_is_declared_once():
    toy = stages.Stage("toy", "Toy", "Train with Toy", stages.STAGES["dpo"].config,
                       "training.dpo:train_dpo", stages.PAIRS, (), "toy")  # fmt: skip
    with stages.stage_registered(toy):
        assert "train-toy" in _commands()
        with pytest.raises(ValueError, match="declared already"):
            stages.stage_register(toy)
    assert "toy" not in stages.STAGES and "train-toy" not in _commands()


def test_every_stage_names_an_importable_train_function_and_its_form_fields_exist():
    for stage in stages.stage_list():
        assert stage.train_function().__name__ == stage.train.partition(":")[2], stage.name
        fields = {f for f in stage.config.__dataclass_fields__}
        assert set(stage.fields) <= fields and {n for n, _ in stage.choices} <= set(stage.fields)


def test_the_device_defaults_apply_where_a_stage_has_the_field():
    assert doctest.testmod(stages).failed == 0
    assert stages.STAGES["grpo"].defaults("cuda")["num_generations"] == 8
    assert "num_generations" not in stages.STAGES["sft"].defaults("cuda")
    assert stages.device_for("mps") == "cpu" and stages.device_for("cuda") == "cuda"
