"""A judge behind any OpenAI-compatible chat-completions endpoint (a hosted model, vLLM,
`transformers serve`), through the `openai` client library.

The API key is given by the caller (read from the environment or an encrypted setting by the
app) and only ever handed to the client: it is not an attribute of the judge, not in its repr,
and every error the client raises is re-raised as `JudgeError` with the key cut out of the
message and without the original exception chained (a traceback would print it otherwise).
Each asking is one request; the reply's text is the rationale, its opening letter the verdict
(`prompts.parse_verdict`); a reply naming neither answer counts as a tie for that order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from training.judges.base import Asked, Cost, JudgeError, PairwiseJudge
from training.judges.prompts import DEFAULT_TEMPLATE, check_template, parse_verdict, render

# Local servers (transformers serve, vLLM without --api-key) accept any key; the client wants one.
NO_KEY = "no-key"


class OpenAIChatJudge(PairwiseJudge):
    """Asks `model` at `base_url` (e.g. "http://127.0.0.1:8000/v1") which answer is better."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        max_tokens: int = 32,
        temperature: float = 0.0,
        timeout: float = 60.0,
        max_retries: int = 1,
    ) -> None:
        from openai import OpenAI

        check_template(template)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url: must start with http:// or https://")
        if not model:
            raise ValueError("model: must name the served model")
        self.base_url = base_url
        self.model = model
        self.template = template
        self.max_tokens = max_tokens
        self.temperature = temperature
        # The key lives in the client and in a redaction closure, nowhere else on the judge.
        key = api_key or NO_KEY
        self._redact = _redactor(key)
        self._client = OpenAI(
            base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries
        )

    def __repr__(self) -> str:
        return f"OpenAIChatJudge(base_url={self.base_url!r}, model={self.model!r})"

    __str__ = __repr__

    def ask(self, prompt: str, shown: Sequence[tuple[str, str]]) -> list[Asked]:
        return [
            self._ask_one(render(self.template, prompt, first, second)) for first, second in shown
        ]

    def _ask_one(self, question: str) -> Asked:
        from openai import OpenAIError

        started = time.perf_counter()
        try:
            reply = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": question}],
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )
        except OpenAIError as exc:
            message = self._redact(f"{type(exc).__name__}: {exc}")
            raise JudgeError(f"{self!r} did not answer: {message}") from None
        seconds = time.perf_counter() - started
        if not reply.choices:
            raise JudgeError(f"{self!r} answered with no choices")
        text = reply.choices[0].message.content or ""
        tokens = reply.usage.total_tokens if reply.usage is not None else 0
        return Asked(float(parse_verdict(text)), text.strip(), Cost(tokens, seconds))


def _redactor(secret: str):
    """A function that replaces the secret (when it is one) in a text with ***."""

    def redact(text: str) -> str:
        return text.replace(secret, "***") if secret and secret != NO_KEY else text

    return redact
