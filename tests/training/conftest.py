"""Models for the training tests, built once per session. `tiny_base_model` (and the
`chat_server` serving it) come from tests/model_server.py, shared by every test package.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import training  # noqa: F401  (sets offline defaults before any HF import)
from tests.model_server import cache_root
from training.bootstrap import bootstrap_base_model
from training.config import BootstrapConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One torch thread unless TRAINING_TEST_THREADS says otherwise.

    The suite often runs beside other test processes on 2 cores, where two OpenMP threads per
    process are many times slower than one (see training.env.limit_threads).
    """
    from training.env import limit_threads

    limit_threads(int(os.environ.get("TRAINING_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def small_base_model() -> str:
    """A 0.87M-parameter base model (30-45 s to build once) for the learning test."""
    return bootstrap_base_model(cache_root(), BootstrapConfig.small()).output_dir


@pytest.fixture(scope="session")
def toy_pairs() -> list[dict[str, str]]:
    """Standard pairs: the chosen completion says "useful", the rejected "error"."""
    prompts = [
        "The list type is",
        "A function call",
        "The with statement",
        "Each module object",
        "A dictionary maps",
        "The import system",
        "A class definition",
        "The return value",
    ]
    return [
        {"prompt": p, "chosen": " a useful and simple value.", "rejected": " an error that fails."}
        for p in prompts
    ]
