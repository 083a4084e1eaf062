"""Sample K completions per prompt, batched with left padding.

Prompts x samples are flattened into one work list, ordered by prompt length (less padding) and
cut into batches of `batch_size` sequences; each batch is one `model.generate` call. Chats
(message lists) go through the tokenizer's chat template with the assistant header appended.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from training.config import GenerateConfig
from training.data import Prompt, is_chat, render_prompt
from training.models import LoadedModel, ModelRef, load_causal_lm
from training.progress import Progress, report


@dataclass
class Sample:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "eos", "stop" (a stop string) or "length"
    completion_ids: list[int] = field(default_factory=list, repr=False)  # as sampled, for scoring


@dataclass
class GenerateResult:
    samples: list[list[Sample]]  # samples[i] are the completions of prompts[i] (K unless stopped)
    settings: dict[str, Any]  # the GenerateConfig used, plus the model name
    metrics: dict[str, Any]
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": [[asdict(s) for s in row] for row in self.samples],
            "settings": self.settings,
            "metrics": self.metrics,
            "stopped": self.stopped,
        }


@dataclass
class _Work:
    prompt_index: int
    ids: list[int]
    done: list[Sample] = field(default_factory=list)


def encode_prompt(tokenizer: Any, prompt: Prompt) -> list[int]:
    """Prompt token ids; a rendered chat template already holds any BOS it wants."""
    return list(
        tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=not is_chat(prompt))[
            "input_ids"
        ]
    )


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists. Returns input_ids (B, T) and attention_mask (B, T), 0 on padding.

    Example: [[5, 6, 7], [8]] with pad 0 -> [[5, 6, 7], [0, 0, 8]], mask [[1, 1, 1], [0, 0, 1]].
    """
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cuts = [text.find(s) for s in stops if s in text]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def stop_criteria(tokenizer: Any, stops: tuple[str, ...], prompt_width: int) -> Any:
    """Rows finish once their completion text contains a stop string.

    Only the generated part is decoded (a stop string spanning the prompt end does not count);
    transformers' own `stop_strings` was 3-5x slower here for short completions.
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    if not stops:
        return None
    longest = max(len(tokenizer.encode(s, add_special_tokens=False)) for s in stops) + 2

    class _StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            # Decode a window a little wider than the longest stop string; earlier text was
            # already checked on previous steps.
            start = max(prompt_width, input_ids.shape[1] - longest - 1)
            tails = tokenizer.batch_decode(input_ids[:, start:].tolist())
            for row, tail in enumerate(tails):
                done[row] = any(s in tail for s in stops)
            return done

    return StoppingCriteriaList([_StopOnStrings()])


def _max_prompt_tokens(model: Any, max_new_tokens: int) -> int | None:
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(
        model.config, "n_positions", None
    )
    return None if limit is None else max(1, limit - max_new_tokens)


def encode_prompts(
    model: Any, tokenizer: Any, prompts: list[Prompt], max_new_tokens: int
) -> tuple[list[list[int]], int]:
    """Prompt ids as `generate` feeds them, and how many were cut to fit the context window.

    A prompt too long for the model keeps its end (what the model continues).
    """
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    limit = _max_prompt_tokens(model, max_new_tokens)
    if limit is None:
        return encoded, 0
    truncated = sum(len(ids) > limit for ids in encoded)
    return [ids[-limit:] for ids in encoded], truncated


def generate(
    model: ModelRef | LoadedModel,
    prompts: list[Prompt],
    config: GenerateConfig | None = None,
    progress: Progress | None = None,
) -> GenerateResult:
    """K samples per prompt. `model` is a hub id, a local directory or a `LoadedModel`.

    Stopping (progress returns True) ends after the current batch; prompts not reached have
    fewer than K samples and the result says `stopped=True`.
    """
    config = config or GenerateConfig()
    loaded = load_causal_lm(model)
    lm, tokenizer = loaded.model, loaded.tokenizer
    lm.eval()
    eos_ids = _eos_ids(lm, tokenizer)
    pad_id = tokenizer.pad_token_id

    encoded, truncated = encode_prompts(lm, tokenizer, prompts, config.max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    work = [_Work(i, encoded[i]) for i in order for _ in range(config.num_samples)]
    batches = [work[s : s + config.batch_size] for s in range(0, len(work), config.batch_size)]

    sampling = config.temperature > 0
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "do_sample": sampling,
        "pad_token_id": pad_id,
        "eos_token_id": sorted(eos_ids),
        "top_k": None,
        "use_cache": True,
    }
    if sampling:
        gen_kwargs.update(temperature=config.temperature, top_p=config.top_p)
    else:
        gen_kwargs.update(temperature=None, top_p=None)

    samples: list[list[Sample]] = [[] for _ in prompts]
    device = next(lm.parameters()).device
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    completion_tokens = 0
    stopped = False
    for number, batch in enumerate(batches, start=1):
        input_ids, attention_mask = left_pad([w.ids for w in batch], pad_id)
        criteria = stop_criteria(tokenizer, config.stop, input_ids.shape[1])
        with torch.inference_mode():
            out = lm.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                stopping_criteria=criteria,
                **gen_kwargs,
            )
        new_tokens = out[:, input_ids.shape[1] :].tolist()
        for item, tokens in zip(batch, new_tokens, strict=True):
            length, reason = len(tokens), "length"
            for pos, tok in enumerate(tokens):
                if tok in eos_ids:
                    length, reason = pos + 1, "eos"
                    break
                if tok == pad_id:  # finished early by a stop string, then padded
                    length, reason = pos, "stop"
                    break
            text = tokenizer.decode(tokens[:length], skip_special_tokens=True)
            text, hit_stop = _cut_at_stop(text, config.stop)
            if hit_stop:
                reason = "stop"
            completion_tokens += length
            samples[item.prompt_index].append(
                Sample(text, len(item.ids), length, reason, tokens[:length])
            )
        elapsed = time.perf_counter() - started
        metrics = {
            "completion_tokens": completion_tokens,
            "tokens_per_s": completion_tokens / elapsed,
        }
        if report(progress, number, len(batches), metrics) and number < len(batches):
            stopped = True
            break

    elapsed = time.perf_counter() - started
    return GenerateResult(
        samples=samples,
        settings={**config.to_dict(), "model": loaded.name},
        metrics={
            "prompts": len(prompts),
            "sequences": sum(len(s) for s in samples),
            "completion_tokens": completion_tokens,
            "seconds": round(elapsed, 4),
            "tokens_per_s": completion_tokens / elapsed if elapsed > 0 else 0.0,
            "truncated_prompts": truncated,
        },
        stopped=stopped,
    )
