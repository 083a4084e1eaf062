"""Build a small base model offline: a BPE tokenizer and a GPT-2 pretrained on Python's docs.

Corpus: the topic help texts in `pydoc_data.topics`, the reference documentation that ships with
every CPython install (about 465 kB of English prose and code; PSF License 2.0, the licence of
Python itself). Every `heldout_every`-th topic is held out for perplexity.

The result is cached in `out_dir/<key>` where the key hashes the config, the corpus and the
library versions: a second call with the same config returns at once. Given a seed the build is
deterministic (fixed step count, seeded initialisation and window sampling, single process).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training import shipped
from training.config import BootstrapConfig
from training.progress import Progress, report

EOS = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [EOS, PAD, IM_START, IM_END]
# ChatML. The prompt rendered with add_generation_prompt is a prefix of prompt + reply, so TRL's
# prompt/completion split falls on a token boundary.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS_NAME = "python-docs (pydoc_data.topics)"
CORPUS_LICENCE = "PSF-2.0"
MANIFEST = "bootstrap.json"
_BUILD_VERSION = 2  # bump when the build procedure changes, to invalidate caches


@dataclass
class BootstrapResult:
    output_dir: str
    metrics: dict[str, Any]
    stopped: bool = False
    cached: bool = False
    shipped: bool = False  # installed from the copy shipped with the code (training/shipped.py)
    history: list[dict[str, float]] = field(default_factory=list)


def corpus_documents() -> list[str]:
    """The documentation topics, in a fixed (sorted) order."""
    from pydoc_data.topics import topics

    return [topics[name].strip() for name in sorted(topics)]


def split_documents(docs: list[str], heldout_every: int) -> tuple[list[str], list[str]]:
    train = [d for i, d in enumerate(docs) if i % heldout_every != heldout_every // 2]
    heldout = [d for i, d in enumerate(docs) if i % heldout_every == heldout_every // 2]
    return train, heldout


def cache_key(config: BootstrapConfig, docs: list[str]) -> str:
    import tokenizers
    import transformers

    payload = {
        "config": config.to_dict(),
        "corpus_sha": hashlib.sha256("\x00".join(docs).encode()).hexdigest(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "build": _BUILD_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def train_tokenizer(docs: list[str], vocab_size: int) -> Any:
    """Byte-level BPE (GPT-2 style) trained on `docs`, with eos, pad and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(docs, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        extra_special_tokens={"im_start": IM_START, "im_end": IM_END},
        model_max_length=1 << 30,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def build_model(config: BootstrapConfig, tokenizer: Any) -> Any:
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    im_end_id = tokenizer.convert_tokens_to_ids(IM_END)
    gpt_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        # The same tanh-approximated GELU as GPT-2's "gelu_new", as one fused op (faster on CPU).
        activation_function="gelu_pytorch_tanh",
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(config.seed)
    model = GPT2LMHeadModel(gpt_config)
    # A chat turn ends at <|im_end|>, a plain text at <|endoftext|>: stop at either.
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, im_end_id],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=eos_id,
    )
    return model


def _token_stream(tokenizer: Any, docs: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for doc in docs:
        ids.extend(tokenizer(doc)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def perplexity(model: Any, stream: torch.Tensor, seq_len: int, windows: int) -> float:
    """exp(mean next-token NLL) over up to `windows` evenly spaced windows of `stream`."""
    was_training = model.training
    model.eval()
    span = seq_len + 1
    count = max(1, min(windows, (len(stream) - 1) // span))
    starts = torch.linspace(0, len(stream) - span, count).long().tolist()
    batch = torch.stack([stream[s : s + span] for s in starts])
    total, n = 0.0, 0
    for chunk in batch.split(16):
        logits = model(input_ids=chunk[:, :-1]).logits
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1), reduction="sum"
        )
        total += float(nll)
        n += chunk[:, 1:].numel()
    model.train(was_training)
    return math.exp(total / n)


def _lr_at(step: int, config: BootstrapConfig) -> float:
    """Linear warmup, then cosine decay to 10 % of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _pretrain(
    model: Any,
    stream: torch.Tensor,
    config: BootstrapConfig,
    progress: Progress | None,
) -> tuple[list[dict[str, float]], bool, int]:
    """nanoGPT-style loop: random windows of the token stream, AdamW, next-token loss."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )
    generator = torch.Generator().manual_seed(config.seed)
    span = config.seq_len + 1
    history: list[dict[str, float]] = []
    model.train()
    started = time.perf_counter()
    tokens = 0
    for step in range(config.max_steps):
        lr = _lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(stream) - span, (config.batch_size,), generator=generator)
        batch = torch.stack([stream[s : s + span] for s in starts.tolist()])
        logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += batch[:, 1:].numel()
        elapsed = time.perf_counter() - started
        metrics = {
            "step": float(step + 1),
            "loss": loss.item(),
            "learning_rate": lr,
            "tokens_per_s": tokens / max(elapsed, 1e-9),
            "elapsed_s": round(elapsed, 3),
        }
        if (step + 1) % 10 == 0 or step + 1 == config.max_steps:
            history.append(metrics)
        if report(progress, step + 1, config.max_steps, metrics):
            return history, True, step + 1
    return history, False, config.max_steps


def bootstrap_base_model(
    out_dir: str | Path,
    config: BootstrapConfig | None = None,
    progress: Progress | None = None,
    use_shipped: bool = True,
) -> BootstrapResult:
    """Build (or fetch from cache) a small pretrained causal LM; returns where it is saved.

    The model lands in `out_dir/<key>` and is a normal Hugging Face directory (model, tokenizer
    with chat template, generation config) loadable by `generate()` and the trainers. A stopped
    build is saved too (usable, `stopped=True`) but is not reused as a cache hit. The default
    config is not pretrained but installed from the copy shipped with the code, checked by hash
    (`training/shipped.py`), unless `use_shipped` is False.
    """
    config = config or BootstrapConfig()
    docs = corpus_documents()
    key = cache_key(config, docs)
    final = Path(out_dir) / key
    if (hit := _cache_hit(final)) is not None:
        return hit
    # One builder per model at a time (two workers' build_base jobs, two test processes): the
    # second waits on the lock, then finds the first one's model in the cache.
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (hit := _cache_hit(final)) is not None:
            return hit
        if use_shipped and shipped.shipped_for(config) and shipped.SHIPPED_SHA256:
            manifest = shipped.install_shipped(final)
            return BootstrapResult(
                output_dir=str(final),
                metrics=manifest["metrics"],
                cached=True,
                shipped=True,
                history=manifest["history"],
            )
        return _build(out_dir, config, docs, key, progress)


def _cache_hit(final: Path) -> BootstrapResult | None:
    manifest = final / MANIFEST
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("complete"):
            return BootstrapResult(
                output_dir=str(final),
                metrics=saved["metrics"],
                cached=True,
                history=saved["history"],
            )
    return None


def _build(
    out_dir: str | Path,
    config: BootstrapConfig,
    docs: list[str],
    key: str,
    progress: Progress | None,
) -> BootstrapResult:
    final = Path(out_dir) / key
    started = time.perf_counter()
    train_docs, heldout_docs = split_documents(docs, config.heldout_every)
    tokenizer = train_tokenizer(train_docs, config.vocab_size)
    tokenizer_s = time.perf_counter() - started
    train_stream = _token_stream(tokenizer, train_docs)
    heldout_stream = _token_stream(tokenizer, heldout_docs)
    model = build_model(config, tokenizer)
    ppl_before = perplexity(model, heldout_stream, config.seq_len, config.eval_windows)
    history, stopped, steps = _pretrain(model, train_stream, config, progress)
    train_s = time.perf_counter() - started - tokenizer_s
    ppl_after = perplexity(model, heldout_stream, config.seq_len, config.eval_windows)
    model.eval()

    metrics = {
        "corpus": CORPUS_NAME,
        "corpus_licence": CORPUS_LICENCE,
        "python": sys.version.split()[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "train_tokens": len(train_stream),
        "heldout_tokens": len(heldout_stream),
        "steps": steps,
        "heldout_perplexity_before": ppl_before,
        "heldout_perplexity_after": ppl_after,
        "tokenizer_seconds": round(tokenizer_s, 3),
        "pretrain_seconds": round(train_s, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "cache_key": key,
    }
    # Write beside, then rename: a crash never leaves a half-written cache entry.
    tmp = Path(out_dir) / f".{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    config.save(tmp)
    payload = {"complete": not stopped, "metrics": metrics, "history": history, "stopped": stopped}
    (tmp / MANIFEST).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    (tmp / "metrics.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return BootstrapResult(output_dir=str(final), metrics=metrics, stopped=stopped, history=history)
