"""Fixtures any test package can use (a pytest plugin, tests/conftest.py): the tiny local
model and a real `transformers serve` answering the OpenAI protocol for it on 127.0.0.1.

`tiny_base_model`: a bootstrapped GPT-2 (2 layers, 64 dims) cached under the repo's `.cache/`
(or $TRAINING_TEST_CACHE), built once in seconds, so later sessions reuse it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    return Path(os.environ.get("TRAINING_TEST_CACHE", REPO / ".cache" / "test-models"))


@pytest.fixture(scope="session")
def tiny_base_model() -> str:
    """Path of a tiny pretrained causal LM with tokenizer and chat template."""
    import training  # noqa: F401  (sets offline defaults before any HF import)
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig

    return bootstrap_base_model(cache_root(), BootstrapConfig.tiny()).output_dir


# A judge template for `tiny_judge_model` that ends the question with the completion shown
# first: the 2-layer model's "A" vs "B" then turns on that completion's last word, so the
# verdict can follow the content in both orders, not only the position.
TAIL_TEMPLATE = "{prompt} {second} {first}"
# Candidates whose last word the tiny model reads, with TAIL_TEMPLATE, as: "headers" -> A
# (the one shown first is better), "res" -> B, "builds" -> A. So "headers" beats "res" and
# "builds" beats "res" in both orders, while "headers" vs "builds" picks whichever is shown
# first: position-inconsistent, a tie.
JUDGED_CANDIDATES = ["It headers", "It res", "It builds"]


@pytest.fixture(scope="session")
def tiny_judge_model(tiny_base_model, tmp_path_factory) -> str:
    """The tiny model without its chat template, so a judge's question is the template's text
    as written (a chat template would end every question with the same assistant prefix)."""
    import shutil

    out = tmp_path_factory.mktemp("tiny-judge") / "model"
    shutil.copytree(tiny_base_model, out, ignore=shutil.ignore_patterns("chat_template.jinja"))
    config = out / "tokenizer_config.json"
    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    return str(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, port: int, *, seconds: float = 120) -> None:
    """Until `GET /health` answers; fails the test if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("transformers serve did not come up")
            time.sleep(0.5)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it was started in a session of its own), then KILL."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def chat_server(tiny_base_model):
    """`transformers serve` on the tiny model, on 127.0.0.1: (base url, model name).
    Its process group is always killed."""
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [str(cli), "serve", tiny_base_model, "--device", "cpu", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(proc, port)
        yield f"http://127.0.0.1:{port}/v1", tiny_base_model
    finally:
        stop_group(proc)
