import json
import time
from pathlib import Path

from safetensors.torch import load_file

from training.bootstrap import bootstrap_base_model
from training.config import BootstrapConfig
from training.models import load_causal_lm


def test_tiny_bootstrap_learns_and_records_perplexity(tiny_base_model):
    metrics = json.loads(Path(f"{tiny_base_model}/metrics.json").read_text())["metrics"]
    assert metrics["heldout_perplexity_after"] < 0.5 * metrics["heldout_perplexity_before"]
    assert metrics["corpus_licence"] == "PSF-2.0"
    loaded = load_causal_lm(tiny_base_model)
    assert loaded.tokenizer.chat_template
    assert loaded.tokenizer.pad_token_id != loaded.tokenizer.eos_token_id


def test_second_call_with_same_config_is_a_cache_hit(tiny_base_model, tmp_path):
    root = tiny_base_model.rsplit("/", 1)[0]
    started = time.perf_counter()
    again = bootstrap_base_model(root, BootstrapConfig.tiny())
    assert again.cached and again.output_dir == tiny_base_model
    assert time.perf_counter() - started < 5


def test_two_builders_of_the_same_model_build_it_once(tmp_path):
    """Two processes (workers, test passes) asking at once: one builds, the other waits and
    finds it in the cache, instead of both building into the same temporary folder."""
    from concurrent.futures import ThreadPoolExecutor

    config = BootstrapConfig.tiny(max_steps=5, eval_windows=4)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: bootstrap_base_model(tmp_path, config), range(2)))
    assert sorted(r.cached for r in results) == [False, True]
    assert results[0].output_dir == results[1].output_dir


def test_bootstrap_is_deterministic_and_keyed_by_config(tmp_path):
    config = BootstrapConfig.tiny(max_steps=5, eval_windows=4)
    a = bootstrap_base_model(tmp_path / "a", config)
    b = bootstrap_base_model(tmp_path / "b", config)
    assert a.output_dir.rsplit("/", 1)[1] == b.output_dir.rsplit("/", 1)[1]
    wa, wb = (
        load_file(f"{a.output_dir}/model.safetensors"),
        load_file(f"{b.output_dir}/model.safetensors"),
    )
    assert all((wa[k] == wb[k]).all() for k in wa)
    other = bootstrap_base_model(tmp_path / "a", config.replace(seed=1))
    assert other.output_dir != a.output_dir


def test_stopping_bootstrap_saves_a_usable_model_that_is_not_cached(tmp_path):
    config = BootstrapConfig.tiny(max_steps=50, eval_windows=4)
    seen = []

    def stop_at_three(step, total, metrics):
        seen.append((step, total, metrics["loss"]))
        return step >= 3

    result = bootstrap_base_model(tmp_path, config, progress=stop_at_three)
    assert result.stopped and result.metrics["steps"] == 3
    assert [s for s, _, _ in seen] == [1, 2, 3] and seen[0][1] == 50
    assert load_causal_lm(result.output_dir).model is not None
    assert not bootstrap_base_model(tmp_path, config, progress=lambda *a: True).cached
