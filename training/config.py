"""Run configurations: one validated dataclass per job, saved as JSON beside each checkpoint.

Every config checks itself in `__post_init__` and raises `ConfigError` naming the field, so an
admin form or API payload can be validated with `SomeConfig.from_dict(data)` before any work
starts. `from_dict` rejects unknown keys (a typo must not silently fall back to a default).

Every number a user can set has a `Range`, declared once on its field (`bounded`): the config
checks it, and the loop page's forms take their min and max from it (`ranges`), so the page,
the API and the CLI accept the same values. The bounds are far beyond any sensible run; they
are there so that a typo (or `1e9`) is refused at once instead of stored and failing later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config_base import (  # noqa: F401 (re-exported)
    BATCH_SIZE,
    BETA,
    MAX_LENGTH,
    MAX_NEW_TOKENS,
    MAX_STOP,
    MAX_STOP_CHARS,
    SAMPLES,
    SEED,
    TEMPERATURE,
    TOP_P,
    ConfigError,
    Range,
    _Config,
    _is_int,
    _is_num,
    _positive_int,
    _positive_num,
    _require,
    bounded,
    check_ranges,
    ranges,
)
from training.train_config import (  # noqa: F401 (re-exported)
    DPO_LOSS_TYPES,
    GRPO_LOSS_TYPES,
    GRPO_SCALE_REWARDS,
    KTO_LOSS_TYPES,
    LEARNING_RATE,
    REWARD_AGGREGATES,
    SFT_LOSS_TYPES,
    BestOfNSFTConfig,
    DPOTrainConfig,
    GRPOTrainConfig,
    KTOTrainConfig,
    OnlineDPOConfig,
    RewardEnsembleConfig,
    RewardTrainConfig,
    RLOOTrainConfig,
    SFTTrainConfig,
    _OnlineRLConfig,
    _TrainConfig,
)


@dataclass
class BootstrapConfig(_Config):
    """A small GPT-2-style base model built offline from Python's own documentation text.

    Defaults take about 105 s on 2 quiet CPU cores (and ship built: `training/shipped.py`);
    `small()` 30-45 s, `tiny()` about 5 s.
    """

    seed: int = 0
    vocab_size: int = 4096  # byte-level BPE, trained on the corpus
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    n_positions: int = 256  # longest sequence the model accepts (prompt + completion)
    seq_len: int = 128  # pretraining window
    batch_size: int = 16
    max_steps: int = 500  # fixed step count, so the result is deterministic given the seed
    learning_rate: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    dropout: float = 0.0
    heldout_every: int = 10  # every N-th documentation topic is held out for perplexity
    eval_windows: int = 64  # held-out windows of seq_len tokens for perplexity

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            _is_int(self.seed) and self.seed >= 0, "seed", "must be an integer >= 0", self.seed
        )
        _require(
            _is_int(self.vocab_size) and 300 <= self.vocab_size <= 65536,
            "vocab_size",
            "must be an integer in [300, 65536] (256 bytes + merges + special tokens)",
            self.vocab_size,
        )
        for name in ("n_layer", "n_head", "n_embd", "n_positions", "seq_len", "batch_size"):
            _positive_int(name, getattr(self, name))
        _require(
            self.n_embd % self.n_head == 0,
            "n_embd",
            f"must be divisible by n_head={self.n_head}",
            self.n_embd,
        )
        _require(
            self.seq_len <= self.n_positions,
            "seq_len",
            f"must be <= n_positions={self.n_positions}",
            self.seq_len,
        )
        _require(
            _is_int(self.max_steps) and self.max_steps >= 0,
            "max_steps",
            "must be an integer >= 0",
            self.max_steps,
        )
        _positive_num("learning_rate", self.learning_rate)
        _require(
            _is_int(self.warmup_steps) and self.warmup_steps >= 0,
            "warmup_steps",
            "must be an integer >= 0",
            self.warmup_steps,
        )
        _require(
            _is_num(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            "must be >= 0",
            self.weight_decay,
        )
        _require(
            _is_num(self.dropout) and 0 <= self.dropout < 1,
            "dropout",
            "must be in [0, 1)",
            self.dropout,
        )
        _require(
            _is_int(self.heldout_every) and self.heldout_every >= 2,
            "heldout_every",
            "must be an integer >= 2",
            self.heldout_every,
        )
        _positive_int("eval_windows", self.eval_windows)

    @classmethod
    def small(cls, **changes: Any) -> BootstrapConfig:
        """About half a minute on 2 cores: enough English for the learning test."""
        values: dict[str, Any] = {
            "vocab_size": 2048,
            "n_layer": 3,
            "n_head": 4,
            "n_embd": 128,
            "n_positions": 128,
            "seq_len": 64,
            "batch_size": 16,
            "max_steps": 600,
            "learning_rate": 3e-3,
            "warmup_steps": 20,
            "eval_windows": 64,
        }
        values.update(changes)
        return cls(**values)

    @classmethod
    def tiny(cls, **changes: Any) -> BootstrapConfig:
        """A model that builds in a few seconds, for tests."""
        values: dict[str, Any] = {
            "vocab_size": 1024,
            "n_layer": 2,
            "n_head": 2,
            "n_embd": 64,
            "n_positions": 128,
            "seq_len": 64,
            "batch_size": 16,
            "max_steps": 400,
            "learning_rate": 3e-3,
            "warmup_steps": 10,
            "eval_windows": 32,
        }
        values.update(changes)
        return cls(**values)


@dataclass
class GenerateConfig(_Config):
    """Sampling settings. temperature=0 means greedy decoding (then top_p is ignored)."""

    num_samples: int = bounded(4, SAMPLES)  # K completions per prompt
    temperature: float = bounded(1.0, TEMPERATURE)
    top_p: float = bounded(1.0, TOP_P)
    max_new_tokens: int = bounded(64, MAX_NEW_TOKENS)
    stop: tuple[str, ...] = ()  # completion text is cut before the first stop string
    seed: int = bounded(0, SEED)
    # Sequences per forward pass (prompts x samples are batched together).
    batch_size: int = bounded(32, BATCH_SIZE)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.stop, list):
            self.stop = tuple(self.stop)
        _check_stop(self.stop)


def _check_stop(stop: Any) -> None:
    _require(
        isinstance(stop, tuple)
        and len(stop) <= MAX_STOP
        and all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stop),
        "stop",
        f"must be a list of at most {MAX_STOP} non-empty strings"
        f" of at most {MAX_STOP_CHARS} characters",
        stop,
    )


@dataclass
class EvalConfig(_Config):
    """Held-out evaluation: pair accuracy, and win rate + KL on fresh samples.

    The KL estimate E_{y~policy}[log pi(y|x) - log pi_parent(y|x)] is unbiased only for samples
    drawn at temperature 1 and top_p 1, which are the defaults.
    """

    samples_per_prompt: int = bounded(1, SAMPLES)
    temperature: float = bounded(1.0, TEMPERATURE)
    top_p: float = bounded(1.0, TOP_P)
    max_new_tokens: int = bounded(48, MAX_NEW_TOKENS)
    stop: tuple[str, ...] = ()
    seed: int = bounded(0, SEED)
    batch_size: int = bounded(32, BATCH_SIZE)
    beta: float = bounded(0.1, BETA)  # scale of the implicit DPO reward beta * log(pi / pi_ref)
    max_length: int = bounded(256, MAX_LENGTH)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.generate_config()  # the sampling fields, by GenerateConfig's rules

    def generate_config(self) -> GenerateConfig:
        return GenerateConfig(
            num_samples=self.samples_per_prompt,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            stop=tuple(self.stop),
            seed=self.seed,
            batch_size=self.batch_size,
        )


def load_config(path: str | Path) -> _Config:
    """Read a config saved by `_Config.save` (the kind is stored beside the values)."""
    payload = json.loads(Path(path).read_text())
    kinds = {
        c.__name__: c
        for c in (
            BootstrapConfig,
            GenerateConfig,
            RewardTrainConfig,
            DPOTrainConfig,
            SFTTrainConfig,
            KTOTrainConfig,
            GRPOTrainConfig,
            RLOOTrainConfig,
            RewardEnsembleConfig,
            BestOfNSFTConfig,
            OnlineDPOConfig,
            EvalConfig,
        )
    }
    try:
        cls = kinds[payload["kind"]]
    except KeyError as exc:
        raise ConfigError(f"kind: unknown config kind {payload.get('kind')!r}") from exc
    return cls.from_dict(payload["config"])


__all__ = [
    "DPO_LOSS_TYPES",
    "GRPO_LOSS_TYPES",
    "KTO_LOSS_TYPES",
    "REWARD_AGGREGATES",
    "SFT_LOSS_TYPES",
    "SEED",
    "Range",
    "BestOfNSFTConfig",
    "BootstrapConfig",
    "ConfigError",
    "DPOTrainConfig",
    "EvalConfig",
    "GenerateConfig",
    "GRPOTrainConfig",
    "KTOTrainConfig",
    "OnlineDPOConfig",
    "RewardEnsembleConfig",
    "RLOOTrainConfig",
    "RewardTrainConfig",
    "SFTTrainConfig",
    "bounded",
    "check_ranges",
    "load_config",
    "ranges",
]
