import pytest

from training.profile import ProfileError, WorkerProfile


def test_one_process_in_process_is_the_default():
    profile = WorkerProfile.from_env({})
    assert profile.processes == 1 and not profile.distributed
    assert profile.describe()["launcher"] == "in-process"


def test_the_environment_sets_the_profile_and_a_job_overrides_it():
    env = {"TRAIN_PROCESSES": "4", "TRAIN_MIXED_PRECISION": "bf16", "TRAIN_LORA": "true"}
    profile = WorkerProfile.from_env(env, overrides={"processes": 2})
    assert profile.processes == 2 and profile.distributed
    assert profile.trainer_overrides() == {"bf16": True, "fp16": False}
    assert profile.describe()["launcher"] == "torchrun"
    from training.config import DPOTrainConfig, SFTTrainConfig

    assert profile.config_defaults(DPOTrainConfig) == {"lora": True}
    assert profile.config_defaults(SFTTrainConfig) == {}  # SFT has no LoRA fields


def test_a_trl_accelerate_config_by_name_selects_accelerate_launch(tmp_path):
    from training.launch import launch_command

    profile = WorkerProfile.from_env({"TRAIN_PROCESSES": "8", "TRAIN_ACCELERATE_CONFIG": "zero2"})
    command = launch_command(profile, tmp_path)
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--config_file") + 1].endswith("accelerate_configs/zero2.yaml")
    assert command[-3:] == ["-m", "training.rank", str(tmp_path)]


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"TRAIN_PROCESSES": "two"}, None, "TRAIN_PROCESSES: must be an integer"),
        ({"TRAIN_PROCESSES": "0"}, None, "processes: must be an integer in"),
        ({"TRAIN_MIXED_PRECISION": "fp8"}, None, "mixed_precision: must be one of"),
        ({"TRAIN_ACCELERATE_CONFIG": "zero9"}, None, "accelerate_config: no such file"),
        ({}, {"gpus": 2}, "gpus: unknown profile field"),
    ],
)
def test_bad_profile_values_are_refused_by_name(env, overrides, message):
    with pytest.raises(ProfileError, match=message):
        WorkerProfile.from_env(env, overrides=overrides)
