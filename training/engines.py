"""Which engine generates: vLLM on a GPU worker that has it, batched transformers otherwise.

`generation_engine()` decides and returns the choice with its reason, so a job can record what
it used (`EngineChoice.to_dict()`). vLLM is chosen only when all hold: the `vllm` package is
installed at a version TRL 1.16 supports (0.22 to 0.31), CUDA is available (TRL's vLLM weight
sync refuses other devices, and there is no official CPU wheel), and `TRAIN_GENERATION_ENGINE`
is not "transformers". `TRAIN_GENERATION_ENGINE=vllm` makes a missing condition an error
instead of a silent fallback. On this project's CPU test machines vLLM is not installable, so
only the transformers path runs in the tests.

- Rounds (candidates for people to rank): `generate_with(engine, ...)`.
- Online RL (GRPO, RLOO): `trainer_generation_args(choice)` are the TRL trainer arguments
  (`use_vllm=True, vllm_mode="colocate"`: vLLM inside each rank, sharing its GPU).
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import asdict, dataclass
from typing import Any

ENGINE_VAR = "TRAIN_GENERATION_ENGINE"
VLLM, TRANSFORMERS = "vllm", "transformers"
VLLM_SUPPORTED = ((0, 22), (0, 31))  # TRL 1.16's supported vLLM minor versions, inclusive


class EngineError(RuntimeError):
    """vLLM was required (TRAIN_GENERATION_ENGINE=vllm) but cannot run here."""


@dataclass(frozen=True)
class EngineChoice:
    name: str  # VLLM or TRANSFORMERS
    reason: str  # why, for the job page
    vllm_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _vllm_version() -> str | None:
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


def _supported(version: str) -> bool:
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return False
    low, high = VLLM_SUPPORTED
    return low <= (major, minor) <= high


def generation_engine(
    environ: dict[str, str] | None = None, *, cuda: bool | None = None
) -> EngineChoice:
    """The engine to generate with here, and why (see the module docstring for the rules)."""
    env = os.environ if environ is None else environ
    wanted = env.get(ENGINE_VAR, "").strip().lower() or "auto"
    if wanted not in ("auto", VLLM, TRANSFORMERS):
        raise EngineError(f"{ENGINE_VAR}: must be auto, vllm or transformers, got {wanted!r}")
    if wanted == TRANSFORMERS:
        return EngineChoice(TRANSFORMERS, f"{ENGINE_VAR}=transformers")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    version = _vllm_version()
    if version is None:
        problem = "vllm is not installed"
    elif not _supported(version):
        problem = f"vllm {version} is outside TRL's supported 0.22-0.31"
    elif not cuda:
        problem = "no CUDA device (vLLM generation runs on GPU workers only)"
    else:
        return EngineChoice(VLLM, f"vllm {version} on a CUDA device", version)
    if wanted == VLLM:
        raise EngineError(f"{ENGINE_VAR}=vllm but {problem}")
    return EngineChoice(TRANSFORMERS, f"batched transformers generation: {problem}", version)


def trainer_generation_args(choice: EngineChoice) -> dict[str, Any]:
    """GRPOConfig / RLOOConfig arguments for the chosen engine."""
    if choice.name == VLLM:
        return {"use_vllm": True, "vllm_mode": "colocate"}
    return {"use_vllm": False}


def generate_with(choice: EngineChoice, model: Any, prompts: list, config: Any, progress=None):
    """`training.generate.generate`'s result from the chosen engine."""
    if choice.name == VLLM:  # pragma: no cover - needs a GPU and vLLM
        return _generate_vllm(model, prompts, config)
    from training.generate import generate

    return generate(model, prompts, config, progress)


def _generate_vllm(model: Any, prompts: list, config: Any):  # pragma: no cover - GPU only
    """K samples per prompt with vLLM's offline engine, in `generate`'s result shape."""
    import time

    from vllm import LLM, SamplingParams

    from training.data import render_prompt
    from training.generate import GenerateResult, Sample

    llm = LLM(model=str(model), seed=config.seed)
    tokenizer = llm.get_tokenizer()
    texts = [render_prompt(tokenizer, p) for p in prompts]
    params = SamplingParams(
        n=config.num_samples,
        temperature=config.temperature,
        top_p=config.top_p if config.temperature > 0 else 1.0,
        max_tokens=config.max_new_tokens,
        stop=list(config.stop) or None,
        seed=config.seed,
    )
    started = time.perf_counter()
    outputs = llm.generate(texts, params)
    samples, tokens = [], 0
    for out in outputs:
        row = []
        for c in out.outputs:
            reason = {"stop": "eos", "length": "length"}.get(c.finish_reason, "stop")
            if c.stop_reason is not None and isinstance(c.stop_reason, str):
                reason = "stop"
            ids = list(c.token_ids)
            tokens += len(ids)
            row.append(Sample(c.text, len(out.prompt_token_ids), len(ids), reason, ids))
        samples.append(row)
    seconds = time.perf_counter() - started
    return GenerateResult(
        samples=samples,
        settings={**config.to_dict(), "model": str(model), "engine": VLLM},
        metrics={
            "prompts": len(prompts),
            "sequences": sum(len(r) for r in samples),
            "completion_tokens": tokens,
            "seconds": round(seconds, 4),
            "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
            "truncated_prompts": 0,
        },
    )
