import json

import pytest

from training.config import (
    BootstrapConfig,
    ConfigError,
    DPOTrainConfig,
    EvalConfig,
    GenerateConfig,
    RewardTrainConfig,
    load_config,
)


@pytest.mark.parametrize(
    ("cls", "field", "value", "message"),
    [
        (DPOTrainConfig, "beta", -1, "beta: must be > 0, got -1"),
        (DPOTrainConfig, "beta", float("nan"), "beta: must be > 0"),
        (DPOTrainConfig, "loss_type", "kto", "loss_type: must be one of"),
        (DPOTrainConfig, "lora_r", 0, "lora_r: must be an integer >= 1"),
        (DPOTrainConfig, "learning_rate", 0, "learning_rate: must be > 0"),
        (DPOTrainConfig, "batch_size", 2.5, "batch_size: must be an integer >= 1"),
        (DPOTrainConfig, "lora", "yes", "lora: must be a bool"),
        (RewardTrainConfig, "epochs", -1, "epochs: must be > 0"),
        (RewardTrainConfig, "max_length", 1, "max_length: must be an integer >= 2"),
        (GenerateConfig, "top_p", 0, "top_p: must be in (0, 1]"),
        (GenerateConfig, "temperature", -0.5, "temperature: must be >= 0"),
        (GenerateConfig, "num_samples", 0, "num_samples: must be an integer >= 1"),
        (GenerateConfig, "stop", [""], "stop: must be a list of non-empty strings"),
        (BootstrapConfig, "n_embd", 130, "n_embd: must be divisible by n_head"),
        (BootstrapConfig, "seq_len", 4096, "seq_len: must be <= n_positions"),
        (EvalConfig, "beta", 0, "beta: must be > 0"),
        (EvalConfig, "samples_per_prompt", 0, "num_samples: must be an integer >= 1"),
    ],
)
def test_bad_value_raises_config_error_naming_the_field(cls, field, value, message):
    with pytest.raises(ConfigError) as info:
        cls(**{field: value})
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


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
    ],
)
def test_config_round_trips_through_json_file(config, tmp_path):
    path = config.save(tmp_path)
    assert json.loads(path.read_text())["kind"] == type(config).__name__
    assert load_config(path) == config
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
