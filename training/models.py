"""Loading causal LMs and their tokenizers from a hub id or a local directory.

Offline by default (see `training.env`): a hub id resolves only if it is already in the local
Hugging Face cache, unless the caller exported HF_HUB_OFFLINE=0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ModelRef = str | os.PathLike


@dataclass
class LoadedModel:
    """A model and its tokenizer, loaded once and passed around to avoid reloading."""

    model: Any
    tokenizer: Any
    name: str


def load_tokenizer(ref: ModelRef, padding_side: str = "left") -> Any:
    """Tokenizer with a pad token (eos if it has none) and the requested padding side."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ref))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def inference_dtype() -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are slow without native support); bf16 on a capable GPU."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_causal_lm(ref: ModelRef | LoadedModel, *, train: bool = False) -> LoadedModel:
    """Load a causal LM for generation or scoring (eval mode: dropout off)."""
    if isinstance(ref, LoadedModel):
        return ref
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if train else inference_dtype()
    model = AutoModelForCausalLM.from_pretrained(str(ref), dtype=dtype)
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.train(train)
    tokenizer = load_tokenizer(ref)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(ref))


def is_local_model_dir(ref: ModelRef) -> bool:
    return Path(ref).is_dir() and (Path(ref) / "config.json").exists()
