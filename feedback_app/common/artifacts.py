"""Placeholder: replaced below."""

from __future__ import annotations


def local_model(ref: str) -> str:
    return ref
