import dataclasses
import json

import pytest

from training.config import (
    BootstrapConfig,
    ConfigError,
    DPOTrainConfig,
    EvalConfig,
    GenerateConfig,
    GRPOTrainConfig,
    KTOTrainConfig,
    RewardTrainConfig,
    RLOOTrainConfig,
    SFTTrainConfig,
    load_config,
    ranges,
)


@pytest.mark.parametrize(
    ("cls", "field", "value", "message"),
    [
        (DPOTrainConfig, "beta", -1, "beta: must be a number in (0, 10], got -1"),
        (DPOTrainConfig, "beta", float("nan"), "beta: must be a number in (0, 10]"),
        (DPOTrainConfig, "loss_type", "kto", "loss_type: must be one of"),
        (DPOTrainConfig, "lora_r", 0, "lora_r: must be an integer in [1, 1024]"),
        (DPOTrainConfig, "learning_rate", 0, "learning_rate: must be a number in (0, 1]"),
        (DPOTrainConfig, "batch_size", 2.5, "batch_size: must be an integer in [1, 1024]"),
        (DPOTrainConfig, "batch_size", 10**9, "batch_size: must be an integer in [1, 1024]"),
        (DPOTrainConfig, "lora", "yes", "lora: must be a bool"),
        (RewardTrainConfig, "epochs", -1, "epochs: must be a number in (0, 1000]"),
        (RewardTrainConfig, "epochs", 1e6, "epochs: must be a number in (0, 1000]"),
        (RewardTrainConfig, "max_length", 1, "max_length: must be an integer in [2, 32768]"),
        (RewardTrainConfig, "seed", 2**70, "seed: must be an integer in [0, 4294967295]"),
        (GenerateConfig, "top_p", 0, "top_p: must be a number in (0, 1]"),
        (GenerateConfig, "temperature", -0.5, "temperature: must be a number in [0, 10]"),
        (GenerateConfig, "num_samples", 0, "num_samples: must be an integer in [1, 64]"),
        (
            GenerateConfig,
            "max_new_tokens",
            10**9,
            "max_new_tokens: must be an integer in [1, 4096]",
        ),
        (GenerateConfig, "stop", [""], "stop: must be a list of at most 16 non-empty strings"),
        (BootstrapConfig, "n_embd", 130, "n_embd: must be divisible by n_head"),
        (BootstrapConfig, "seq_len", 4096, "seq_len: must be <= n_positions"),
        (EvalConfig, "beta", 0, "beta: must be a number in (0, 10]"),
        (EvalConfig, "samples_per_prompt", 0, "samples_per_prompt: must be an integer in [1, 64]"),
        (SFTTrainConfig, "loss_type", "ppo", "loss_type: must be one of nll, dft"),
        (SFTTrainConfig, "completion_only_loss", 1, "completion_only_loss: must be a bool"),
        (SFTTrainConfig, "group_by_length", "yes", "group_by_length: must be a bool"),
        (KTOTrainConfig, "batch_size", 1, "batch_size: must be an integer in [2, 1024]"),
        (KTOTrainConfig, "desirable_weight", 0, "desirable_weight: must be a number in (0, 100]"),
        (KTOTrainConfig, "loss_type", "sigmoid", "loss_type: must be one of kto, apo_zero"),
        (GRPOTrainConfig, "num_generations", 65, "num_generations: must be an integer in [2, 64]"),
        (GRPOTrainConfig, "epsilon", 0, "epsilon: must be a number in (0, 1]"),
        (GRPOTrainConfig, "scale_rewards", "yes", "scale_rewards: must be one of group, batch"),
        (RLOOTrainConfig, "batch_size", 10, "batch_size: must be a multiple of num_generations=4"),
        (RLOOTrainConfig, "normalize_advantages", "no", "normalize_advantages: must be a bool"),
    ],
)
def test_bad_value_raises_config_error_naming_the_field(cls, field, value, message):
    with pytest.raises(ConfigError) as info:
        cls(**{field: value})
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "cls",
    [
        GenerateConfig,
        RewardTrainConfig,
        DPOTrainConfig,
        SFTTrainConfig,
        KTOTrainConfig,
        GRPOTrainConfig,
        RLOOTrainConfig,
        EvalConfig,
    ],
)
def test_every_number_a_user_can_set_has_bounds(cls):
    """The launch forms and the API take their limits from these (issue 9: `epochs: 1e6`)."""
    numbers = {
        f.name
        for f in dataclasses.fields(cls)
        if f.type in ("int", "float") and f.name != "center_rewards_coefficient"
    }
    assert numbers and numbers == set(ranges(cls))
    for name, allowed in ranges(cls).items():
        assert allowed.allows(getattr(cls(), name)), f"the default of {name} is out of bounds"
        assert not allowed.allows(True), f"{name} takes a bool"


def test_from_dict_rejects_unknown_keys_by_name():
    with pytest.raises(ConfigError, match="^betta, lr: unknown field"):
        DPOTrainConfig.from_dict({"betta": 0.1, "lr": 1e-3, "epochs": 1})


def test_from_dict_validates_values():
    with pytest.raises(ConfigError, match="^beta:"):
        DPOTrainConfig.from_dict({"beta": -1})


@pytest.mark.parametrize(
    "config",
    [
        BootstrapConfig.tiny(),
        GenerateConfig(stop=("\n\n", "###"), temperature=0.7),
        RewardTrainConfig(center_rewards_coefficient=0.01),
        DPOTrainConfig(lora=True, lora_target_modules=("c_attn",), loss_type="ipo"),
        EvalConfig(stop=("\n",)),
        SFTTrainConfig(loss_type="dft"),
        KTOTrainConfig(undesirable_weight=1.5),
        GRPOTrainConfig(num_generations=2, loss_type="grpo"),
        RLOOTrainConfig(normalize_advantages=True),
    ],
)
def test_config_round_trips_through_json_file(config, tmp_path):
    path = config.save(tmp_path)
    assert json.loads(path.read_text())["kind"] == type(config).__name__
    assert load_config(path) == config
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
