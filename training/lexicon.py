"""The sentiment lexicon: the transparent, free "classifier" of the experiment and the simulation.

Torch-free on purpose: the simulated annotators (`feedback_app.annotation.simulation`) and the web
process use it without loading a model library. The words are those the Python documentation
actually uses, so a small model pretrained on it can move either way:
    sentiment(text) = #positive words - #negative words;  property: sentiment(text) > 0.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


POSITIVE = _words(
    """useful simple simply valid correct correctly success successful successfully true clear
    clearly efficient efficiently recommended convenient convenience well normal normally
    allowed possible always best easy easily safe improved support supports supported
    available help helps helpful succeed succeeds guaranteed accept accepts accepted works
    enabled ensure ensures"""
)
NEGATIVE = _words(
    """error errors fail fails failed failure invalid wrong bad exception exceptions raise raised
    raises deprecated warning warnings broken cannot never illegal undefined impossible
    unable problem problems missing ignored unexpected lost incorrect unsupported"""
)
_WORD = re.compile(r"[a-z]+")


def sentiment(text: str) -> int:
    """#positive - #negative lexicon words (case-insensitive)."""
    words = _WORD.findall(text.lower())
    return sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)


def is_positive(text: str) -> bool:
    return sentiment(text) > 0
