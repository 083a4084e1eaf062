"""Judges that run here: a causal LM asked with a template, and a reward model.

`CausalLMJudge` reads the verdict from the next-token probabilities of "A" and "B" after the
template (mode "logprobs": preference = P(A) - P(B) renormalised over the two, in [-1, 1]; a
rationale of a few greedy tokens is generated only when `rationale_tokens` > 0), or from greedy
generated text (mode "generate": preference +-1 or 0, the text is the rationale). A tokenizer
with a chat template gets the question as one user message (unless `chat=False`). A question
longer than the model's context keeps its end (the completions' tails and the question), as
`generate` does.

`RewardModelJudge` scores each completion once (`training.reward.RewardScorer`); the preference
is the reward difference. Order cannot matter to it, so it is consistent by construction; the
comparison still goes through both orders so that its figures are read like every judge's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from training.generate import left_pad
from training.judges.base import Asked, Cost, PairwiseJudge
from training.judges.prompts import (
    DEFAULT_TEMPLATE,
    LABELS,
    check_template,
    parse_verdict,
    render,
)
from training.models import LoadedModel, ModelRef, load_causal_lm

MODES = ("logprobs", "generate")


class CausalLMJudge(PairwiseJudge):
    """A local Hugging Face causal LM asked "which is better, A or B?" (see the module doc)."""

    def __init__(
        self,
        model: ModelRef | LoadedModel,
        *,
        template: str = DEFAULT_TEMPLATE,
        mode: str = "logprobs",
        tie_threshold: float = 0.0,
        max_new_tokens: int = 24,
        rationale_tokens: int = 0,
        batch_size: int = 8,
        chat: bool | None = None,
    ) -> None:
        check_template(template)
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "generate" and max_new_tokens < 1:
            raise ValueError("max_new_tokens: must be at least 1 to generate a verdict")
        self.loaded = load_causal_lm(model)
        self.template = template
        self.mode = mode
        self.tie_threshold = tie_threshold
        self.max_new_tokens = max_new_tokens
        self.rationale_tokens = rationale_tokens
        self.batch_size = batch_size
        # None: wrap the question as a user message when the tokenizer has a chat template.
        self.chat = bool(self.loaded.tokenizer.chat_template) if chat is None else chat
        self._label_ids = [self._first_token_ids(label) for label in LABELS]

    def __repr__(self) -> str:
        return f"CausalLMJudge(model={self.loaded.name!r}, mode={self.mode!r})"

    def _first_token_ids(self, label: str) -> list[int]:
        """The tokens that start the label, with and without a leading space (both count)."""
        tok = self.loaded.tokenizer
        ids = {tok.encode(text, add_special_tokens=False)[0] for text in (label, " " + label)}
        return sorted(ids)

    def _encode(self, question: str, room: int) -> list[int]:
        tok = self.loaded.tokenizer
        if self.chat:
            text = tok.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(question)["input_ids"]
        config = self.loaded.model.config
        limit = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        return list(ids[-(limit - room) :]) if limit and len(ids) > limit - room else list(ids)

    @torch.inference_mode()
    def ask(self, prompt: str, shown: Sequence[tuple[str, str]]) -> list[Asked]:
        out: list[Asked] = []
        for start in range(0, len(shown), self.batch_size):
            chunk = shown[start : start + self.batch_size]
            questions = [render(self.template, prompt, first, second) for first, second in chunk]
            out.extend(self._ask_batch(questions))
        return out

    def _ask_batch(self, questions: list[str]) -> list[Asked]:
        started = time.perf_counter()
        model, tok = self.loaded.model, self.loaded.tokenizer
        new = self.max_new_tokens if self.mode == "generate" else self.rationale_tokens
        rows = [self._encode(q, max(new, 1)) for q in questions]
        ids, mask = left_pad(rows, tok.pad_token_id)
        ids, mask = ids.to(model.device), mask.to(model.device)
        prefs: list[float]
        texts = [""] * len(rows)
        generated = 0
        if self.mode == "logprobs":
            logits = model(input_ids=ids, attention_mask=mask).logits[:, -1, :].float()
            probs = torch.softmax(logits, dim=-1)
            p_a = probs[:, self._label_ids[0]].sum(dim=-1)
            p_b = probs[:, self._label_ids[1]].sum(dim=-1)
            prefs = ((p_a - p_b) / (p_a + p_b).clamp_min(1e-12)).tolist()
            texts = [
                f"P(A)={a:.3f} P(B)={b:.3f}"
                for a, b in zip(p_a.tolist(), p_b.tolist(), strict=True)
            ]
        if new and (self.mode == "generate" or self.rationale_tokens):
            replies, generated = self._greedy(ids, mask, new)
            if self.mode == "generate":
                prefs = [float(parse_verdict(r)) for r in replies]
                texts = replies
            else:
                texts = [f"{t}; {r.strip()}" for t, r in zip(texts, replies, strict=True)]
        seconds = (time.perf_counter() - started) / len(rows)
        return [
            Asked(pref, text, Cost(len(row) + generated // len(rows), seconds))
            for pref, text, row in zip(prefs, texts, rows, strict=True)
        ]

    def _greedy(self, ids: torch.Tensor, mask: torch.Tensor, new: int) -> tuple[list[str], int]:
        model, tok = self.loaded.model, self.loaded.tokenizer
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
        tail = out[:, ids.shape[1] :]
        produced = int((tail != tok.pad_token_id).sum())
        return tok.batch_decode(tail, skip_special_tokens=True), produced


class RewardModelJudge(PairwiseJudge):
    """A sequence-classification reward model (num_labels=1): margin = reward difference."""

    def __init__(
        self, model: ModelRef | Any, *, tie_threshold: float = 0.0, batch_size: int = 32
    ) -> None:
        from training.reward import RewardScorer

        self.scorer = model if isinstance(model, RewardScorer) else RewardScorer(model, batch_size)
        self.name = str(getattr(self.scorer.model.config, "_name_or_path", "reward model"))
        self.tie_threshold = tie_threshold

    def __repr__(self) -> str:
        return f"RewardModelJudge(model={self.name!r})"

    def ask(self, prompt: str, shown: Sequence[tuple[str, str]]) -> list[Asked]:
        started = time.perf_counter()
        texts = sorted({t for pair in shown for t in pair})
        scores = dict(
            zip(texts, self.scorer.score_completions([prompt] * len(texts), texts), strict=True)
        )
        tokens = {t: len(self.scorer.tokenizer(prompt + t)["input_ids"]) for t in texts}
        # Each distinct text is scored once; its cost is shared by the askings that show it.
        seconds = (time.perf_counter() - started) / len(shown)
        shares = {t: sum(t in pair for pair in shown) for t in texts}
        return [
            Asked(
                scores[first] - scores[second],
                f"reward {scores[first]:+.3f} (first) vs {scores[second]:+.3f} (second)",
                Cost(tokens[first] // shares[first] + tokens[second] // shares[second], seconds),
            )
            for first, second in shown
        ]
