"""The judge's question and how its answer is read, shared by the local LM and the chat endpoint.

A template is a `str.format` string with the fields {prompt}, {first} and {second} (the two
completions in the order shown); the values are inserted as they are, so braces inside a
completion are harmless. The reply names the better answer as "A" (first) or "B" (second).
"""

from __future__ import annotations

import re

DEFAULT_TEMPLATE = (
    "You compare two answers to the same prompt. Reply with the letter of the better answer, "
    "A or B, then one short sentence saying why.\n\n"
    "Prompt:\n{prompt}\n\n"
    "Answer A:\n{first}\n\n"
    "Answer B:\n{second}\n\n"
    "Better answer:"
)
FIELDS = ("prompt", "first", "second")
LABELS = ("A", "B")

# The letter opening the reply ("A", "**B**", "Answer A.", "B) because..."); else "answer A"
# anywhere. A lowercase "a" is an article, never a verdict.
_OPENING = re.compile(r"^\W*(?:(?i:the\s+)?(?i:better\s+)?(?i:answer)\s*)?([AB])\b")
_ANYWHERE = re.compile(r"(?i:answer)\s+([AB])\b")


def check_template(template: str) -> None:
    """Raise ValueError naming a missing or unknown field of a judge template."""
    found = set(re.findall(r"(?<!\{)\{(\w*)\}(?!\})", template))
    missing = [f for f in FIELDS if f not in found]
    if missing:
        raise ValueError(f"template: must contain {{{missing[0]}}}")
    unknown = sorted(found - set(FIELDS))
    if unknown:
        raise ValueError(f"template: unknown field {{{unknown[0]}}} (allowed: {', '.join(FIELDS)})")


def render(template: str, prompt: str, first: str, second: str) -> str:
    return template.format(prompt=prompt, first=first, second=second)


def parse_verdict(reply: str) -> int:
    """+1 when the reply picks the first shown (A), -1 the second (B), 0 when it names neither.

    >>> parse_verdict("**B** is clearer."), parse_verdict("Answer A, since")
    (-1, 1)
    >>> parse_verdict("A) shorter")
    1
    >>> parse_verdict("I think answer B wins"), parse_verdict("both are fine")
    (-1, 0)
    """
    match = _OPENING.match(reply) or _ANYWHERE.search(reply)
    if match is None:
        return 0
    return 1 if match.group(1) == "A" else -1
