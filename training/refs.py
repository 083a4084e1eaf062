"""Check that a model reference (a hub id or a local path) names a loadable causal LM.

Only its config and tokenizer are loaded, not its weights: enough to catch a typo, a folder
without `config.json` or a hub id missing from the offline cache, in about a second, before a
project is saved with it. Offline by default like the rest of `training` (HF_HUB_OFFLINE).
"""

from __future__ import annotations

import os


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() not in ("0", "false", "no", "")


def model_ref_problem(ref: str) -> str | None:
    """Why `ref` cannot be loaded (config or tokenizer), or None if both load.

    >>> model_ref_problem("/no/such/folder") is not None
    True
    """
    from transformers import AutoConfig, AutoTokenizer

    local = _offline()
    try:
        config = AutoConfig.from_pretrained(ref, local_files_only=local)
    except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, KeyError...
        return f"no model config could be loaded from {ref!r}: {_first_line(exc)}"
    if not getattr(config, "model_type", ""):
        return f"{ref!r} has no model type in its config"
    try:
        AutoTokenizer.from_pretrained(ref, local_files_only=local)
    except Exception as exc:  # noqa: BLE001
        return f"no tokenizer could be loaded from {ref!r}: {_first_line(exc)}"
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
