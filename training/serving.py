"""Serving a model over the OpenAI chat-completions protocol with an existing server, and asking
it one question. No server is written here: `transformers serve` (CPU, or any device torch
has) or vLLM (a GPU machine) is started by `serve_command`'s argument list.

`transformers serve` without a model loads whatever model a request names (a local folder)
and unloads it when idle, so one server answers for every version; a server given one
version's weights (or vLLM, which always serves one) answers only for it, under that name.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.engines import VLLM_SUPPORTED, _supported, _vllm_version

Engine = Literal["transformers", "vllm"]
ENGINES: tuple[str, ...] = ("transformers", "vllm")


def _program(name: str) -> str:
    """The console script beside this interpreter (a venv), else the one on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def serve_command(
    *,
    weights: str | None,
    engine: Engine = "transformers",
    host: str = "127.0.0.1",
    port: int = 8001,
    device: str = "cpu",
) -> list[str]:
    """The argument list that starts `engine` serving `weights` (None: every model on demand).

    >>> serve_command(weights="/m", port=9)[1:]
    ['serve', '/m', '--device', 'cpu', '--host', '127.0.0.1', '--port', '9']
    """
    if engine == "transformers":
        model = [weights] if weights else []
        return [
            _program("transformers"), "serve", *model, "--device", device,
            "--host", host, "--port", str(port),
        ]  # fmt: skip
    if engine == "vllm":
        if not weights:
            raise ValueError("weights: vLLM serves one model; name the version")
        # The served name is the weights path, as the playground asks for it (`model=`).
        return [
            _program("vllm"), "serve", weights, "--served-model-name", weights,
            "--host", host, "--port", str(port),
        ]  # fmt: skip
    raise ValueError(f"engine: must be one of {list(ENGINES)}")


class ServingError(Exception):
    """A server cannot start here, or did not answer (down, timed out, refused the model)."""


def check_engine(engine: str) -> None:
    """Refuse, before exec, an engine that cannot start here (vLLM missing or unsupported)."""
    if engine not in ENGINES:
        raise ServingError(f"engine: must be one of {list(ENGINES)}")
    if engine == "vllm":
        version = _vllm_version()
        low, high = VLLM_SUPPORTED
        supported = f"{low[0]}.{low[1]}-{high[0]}.{high[1]}"
        if version is None:
            raise ServingError(
                f"vllm is not installed (on a GPU machine: pip install a vllm {supported}, "
                "a release TRL supports)"
            )
        if not _supported(version):
            raise ServingError(f"vllm {version} is outside TRL's supported {supported}")


@dataclass(frozen=True)
class Answer:
    """One completion: its text, the server's token count and the wall seconds it took."""

    text: str
    tokens: int
    seconds: float


def chat_answer(
    *,
    base_url: str,
    model: str,
    prompt: str,
    max_tokens: int = 64,
    timeout: float = 20.0,
    temperature: float = 0.7,
) -> Answer:
    """Ask `model` at `base_url` (".../v1") one user message; bounded by `timeout`, no retry."""
    from openai import OpenAI, OpenAIError

    client = OpenAI(base_url=base_url, api_key="no-key", timeout=timeout, max_retries=0)
    started = time.perf_counter()
    try:
        reply = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=temperature,
        )
    except OpenAIError as exc:
        raise ServingError(f"{base_url} did not answer: {type(exc).__name__}: {exc}") from None
    text = (reply.choices[0].message.content or "") if reply.choices else ""
    tokens = reply.usage.completion_tokens if reply.usage else 0
    return Answer(text=text, tokens=tokens, seconds=time.perf_counter() - started)
