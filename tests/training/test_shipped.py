"""Issue 25: the default base model ships with the code, checked by hash; the first run
installs it in seconds instead of pretraining it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from training import shipped
from training.bootstrap import (
    _token_stream,
    bootstrap_base_model,
    corpus_documents,
    perplexity,
    split_documents,
)
from training.config import BootstrapConfig
from training.generate import generate
from training.models import load_causal_lm


def test_the_shipped_files_match_the_hashes_recorded_in_the_code():
    assert set(shipped.SHIPPED_SHA256) == {p.name for p in shipped.SHIPPED_DIR.iterdir()}
    shipped.verify()
    total = sum(p.stat().st_size for p in shipped.SHIPPED_DIR.iterdir())
    assert total < 30 * 2**20  # small enough for git


def test_the_loader_refuses_a_shipped_weight_file_that_does_not_match_its_hash(tmp_path):
    copy = tmp_path / "shipped"
    shutil.copytree(shipped.SHIPPED_DIR, copy)
    data = bytearray((copy / shipped.WEIGHTS).read_bytes())
    data[-1] ^= 1  # one bit of one weight
    (copy / shipped.WEIGHTS).write_bytes(bytes(data))
    final = tmp_path / "cache" / "key"
    final.parent.mkdir()
    with pytest.raises(shipped.ShippedModelError, match="model.safetensors: sha256"):
        shipped.install_shipped(final, directory=copy)
    assert not final.exists() and list(final.parent.iterdir()) == []


def test_the_loader_refuses_a_missing_shipped_file(tmp_path):
    copy = tmp_path / "shipped"
    shutil.copytree(shipped.SHIPPED_DIR, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(shipped.ShippedModelError, match="tokenizer.json: missing"):
        shipped.install_shipped(tmp_path / "key", directory=copy)


def test_the_default_base_model_is_installed_not_pretrained_and_keeps_its_quality(tmp_path):
    steps = []
    result = bootstrap_base_model(tmp_path, BootstrapConfig(), progress=lambda *a: steps.append(a))
    assert result.shipped and result.cached and steps == []  # no pretraining step ran
    weights = load_file(f"{result.output_dir}/{shipped.WEIGHTS}")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    manifest = json.loads((shipped.SHIPPED_DIR / "bootstrap.json").read_text())
    assert manifest["complete"] and result.metrics["steps"] == BootstrapConfig().max_steps

    # float16 storage does not cost the model its quality: the held-out perplexity of the
    # installed copy is the build's own (float32) to within 1 %.
    config = BootstrapConfig()
    loaded = load_causal_lm(result.output_dir)
    _, heldout = split_documents(corpus_documents(), config.heldout_every)
    stream = _token_stream(loaded.tokenizer, heldout)
    ppl = perplexity(loaded.model, stream, config.seq_len, config.eval_windows)
    assert ppl == pytest.approx(result.metrics["heldout_perplexity_after"], rel=0.01)

    again = bootstrap_base_model(tmp_path, BootstrapConfig())
    assert again.cached and not again.shipped and again.output_dir == result.output_dir


def test_the_installed_default_model_generates_text(tmp_path):
    from training.config import GenerateConfig

    result = bootstrap_base_model(tmp_path, BootstrapConfig())
    out = generate(
        result.output_dir,
        ["The list type is"],
        GenerateConfig(num_samples=2, max_new_tokens=12, seed=0),
    )
    assert len(out.samples[0]) == 2
    assert all(s.completion_tokens > 0 and s.text.strip() for s in out.samples[0])


def test_importing_training_makes_openmp_threads_wait_passively_unless_chosen():
    """Set before torch loads its OpenMP runtime, which reads it once (docs/benchmarks.md)."""
    code = "import os, training, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE", out.stderr
