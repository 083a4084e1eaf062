import importlib.util

import pytest

from training.config import GenerateConfig
from training.engines import (
    TRANSFORMERS,
    EngineError,
    generate_with,
    generation_engine,
    trainer_generation_args,
)


def test_vllm_is_not_installable_here_so_generation_falls_back_to_transformers():
    # No official CPU wheel of vLLM exists; this machine has no CUDA either.
    assert importlib.util.find_spec("vllm") is None
    choice = generation_engine({}, cuda=True)
    assert choice.name == TRANSFORMERS
    assert "vllm is not installed" in choice.reason
    assert trainer_generation_args(choice) == {"use_vllm": False}
    assert choice.to_dict()["name"] == "transformers"


def test_requiring_vllm_where_it_cannot_run_is_an_error_not_a_silent_fallback():
    with pytest.raises(EngineError, match="vllm is not installed"):
        generation_engine({"TRAIN_GENERATION_ENGINE": "vllm"}, cuda=True)
    with pytest.raises(EngineError, match="must be auto, vllm or transformers"):
        generation_engine({"TRAIN_GENERATION_ENGINE": "tgi"})


def test_the_fallback_engine_generates_k_samples_per_prompt(tiny_base_model):
    choice = generation_engine({})
    config = GenerateConfig(num_samples=2, max_new_tokens=4)
    result = generate_with(choice, tiny_base_model, ["The list type is"], config)
    assert len(result.samples[0]) == 2
    assert result.metrics["completion_tokens"] > 0


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vLLM is installed: it may run here"
)
@pytest.mark.parametrize(
    "train",
    [
        "training.online_rl:train_grpo",
        "training.online_rl:train_rloo",
        "training.best_of_n:train_best_of_n_sft",
        "training.online_dpo:train_online_dpo",
    ],
)
def test_every_stage_that_samples_refuses_a_required_vllm_before_any_work(
    train, tiny_base_model, tmp_path, monkeypatch
):
    from training.rank import import_object

    monkeypatch.setenv("TRAIN_GENERATION_ENGINE", "vllm")
    function = import_object(train)
    rows = [{"prompt": "The list type is"}, {"prompt": "A function call"}]
    more = [[]] if train.endswith("online_dpo") else []  # online DPO's human pairs
    with pytest.raises(EngineError, match="TRAIN_GENERATION_ENGINE=vllm but vllm is not"):
        function(tiny_base_model, tmp_path / "no-rm", rows, *more, tmp_path / "out")
    assert not (tmp_path / "out").exists()
