"""The generation throughput benchmark."""

from __future__ import annotations

from typing import Any


def bench_generation(model: str, prompts: int, new_tokens: int) -> list[dict[str, Any]]:
    from training.config import GenerateConfig
    from training.experiment import corpus_prompts
    from training.generate import generate
    from training.models import load_causal_lm

    loaded = load_causal_lm(model)
    texts = corpus_prompts(prompts, 3, heldout=True)
    rows = []
    for batch in (1, 8, 32):
        config = GenerateConfig(num_samples=1, max_new_tokens=new_tokens, batch_size=batch)
        generate(loaded, texts[:batch], config)  # warm-up
        result = generate(loaded, texts, config)
        rows.append({"batch": batch, **result.metrics})
    return rows
