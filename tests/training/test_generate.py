import pytest

from training.config import GenerateConfig
from training.generate import generate
from training.models import load_causal_lm

PROMPTS = ["The for statement", "Exceptions are raised", "A list"]


@pytest.fixture(scope="module")
def tiny(tiny_base_model):
    return load_causal_lm(tiny_base_model)


def test_returns_k_samples_per_prompt_with_token_counts_and_settings(tiny):
    chat = [{"role": "user", "content": "What is a list?"}]
    config = GenerateConfig(num_samples=3, max_new_tokens=12, batch_size=4)
    result = generate(tiny, [*PROMPTS, chat], config)
    assert [len(row) for row in result.samples] == [3, 3, 3, 3]
    for row in result.samples:
        for sample in row:
            assert 1 <= sample.completion_tokens <= 12
            assert sample.prompt_tokens > 0
            assert sample.finish_reason in {"eos", "stop", "length"}
    chat_prompt_tokens = result.samples[3][0].prompt_tokens
    assert chat_prompt_tokens > len(
        tiny.tokenizer("What is a list?")["input_ids"]
    )  # template applied
    assert result.settings["num_samples"] == 3 and result.settings["model"] == tiny.name
    assert result.metrics["completion_tokens"] == sum(
        s.completion_tokens for r in result.samples for s in r
    )


def test_same_seed_same_samples_other_seed_other_samples(tiny):
    config = GenerateConfig(num_samples=2, max_new_tokens=10, seed=3)
    a = generate(tiny, PROMPTS, config)
    b = generate(tiny, PROMPTS, config)
    c = generate(tiny, PROMPTS, config.replace(seed=4))
    texts = lambda r: [s.text for row in r.samples for s in row]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_left_padded_batches_match_one_prompt_at_a_time_under_greedy_decoding(tiny):
    config = GenerateConfig(num_samples=1, temperature=0, max_new_tokens=8)
    batched = generate(tiny, PROMPTS, config.replace(batch_size=8))
    single = generate(tiny, PROMPTS, config.replace(batch_size=1))
    assert [r[0].text for r in batched.samples] == [r[0].text for r in single.samples]


def test_stop_strings_cut_the_completion(tiny):
    config = GenerateConfig(num_samples=4, max_new_tokens=40, stop=(" ",), seed=1)
    result = generate(tiny, PROMPTS, config)
    for row in result.samples:
        for sample in row:
            assert " " not in sample.text
            if sample.finish_reason == "stop":
                assert sample.completion_tokens < 40


def test_progress_can_stop_generation_between_batches(tiny):
    calls = []

    def stop(step, total, metrics):
        calls.append((step, total))
        return True

    config = GenerateConfig(num_samples=2, max_new_tokens=4, batch_size=2)
    result = generate(tiny, PROMPTS, config, progress=stop)
    assert result.stopped and calls == [(1, 3)]
    assert sum(len(r) for r in result.samples) == 2
