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

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

# Loss types of TRL 1.16's DPOTrainer that need only pairs (no extra columns or models).
DPO_LOSS_TYPES: tuple[str, ...] = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)


class ConfigError(ValueError):
    """A config value is invalid; the message starts with the field name."""


def _require(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{name}: {rule}, got {value!r}")


@dataclass(frozen=True)
class Range:
    """The values a number field allows: from `low` to `high`, each end included unless open.

    >>> str(Range(0, 1, low_open=True)), Range(1, 8, integer=True).allows(8.0)
    ('a number in (0, 1]', False)
    """

    low: int | float
    high: int | float
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def allows(self, value: Any) -> bool:
        if not (_is_int(value) if self.integer else _is_num(value)):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, name: str, value: Any) -> None:
        _require(self.allows(value), name, f"must be {self}", value)

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{kind} in {left}{self.low}, {self.high}{right}"


# numpy's seed range: transformers' set_seed hands the seed to numpy.
SEED = Range(0, 2**32 - 1, integer=True)
BATCH_SIZE = Range(1, 1024, integer=True)
MAX_LENGTH = Range(2, 32768, integer=True)  # tokens of prompt + completion
MAX_NEW_TOKENS = Range(1, 4096, integer=True)
SAMPLES = Range(1, 64, integer=True)  # completions per prompt
TEMPERATURE = Range(0, 10)
TOP_P = Range(0, 1, low_open=True)
BETA = Range(0, 10, low_open=True)
MAX_STOP = 16  # stop strings, of at most MAX_STOP_CHARS characters each
MAX_STOP_CHARS = 200


def bounded(default: Any, allowed: Range) -> Any:
    """A dataclass field whose values `allowed` bounds (read back with `ranges`)."""
    return field(default=default, metadata={"range": allowed})


def ranges(cls: type) -> dict[str, Range]:
    """The bounded fields of a dataclass (a config, or `PairPolicy`), by name."""
    return {f.name: f.metadata["range"] for f in dataclasses.fields(cls) if "range" in f.metadata}


def check_ranges(obj: Any) -> None:
    """Raise ConfigError naming the first bounded field of `obj` whose value is out of range."""
    for name, allowed in ranges(type(obj)).items():
        allowed.check(name, getattr(obj, name))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _positive_int(name: str, value: Any) -> None:
    _require(_is_int(value) and value >= 1, name, "must be an integer >= 1", value)


def _positive_num(name: str, value: Any) -> None:
    _require(_is_num(value) and value > 0, name, "must be > 0", value)


@dataclass
class _Config:
    """Shared JSON round trip and strict `from_dict`."""

    FILENAME: ClassVar[str] = "training_config.json"

    def __post_init__(self) -> None:
        check_ranges(self)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{', '.join(unknown)}: unknown field(s) for {cls.__name__}")
        kwargs = dict(data)
        for f in dataclasses.fields(cls):
            # JSON has no tuples; accept lists for tuple fields.
            if f.name in kwargs and isinstance(kwargs[f.name], list) and "tuple" in str(f.type):
                kwargs[f.name] = tuple(kwargs[f.name])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / self.FILENAME
        payload = {"kind": type(self).__name__, "config": self.to_dict()}
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return path


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


LEARNING_RATE = Range(0, 1, low_open=True)


@dataclass
class _TrainConfig(_Config):
    learning_rate: float = bounded(1e-4, LEARNING_RATE)
    epochs: float = bounded(1.0, Range(0, 1000, low_open=True))
    batch_size: int = bounded(8, BATCH_SIZE)
    max_length: int = bounded(256, MAX_LENGTH)  # prompt + completion tokens
    seed: int = bounded(0, SEED)
    warmup_ratio: float = bounded(0.0, Range(0, 1, high_open=True))
    weight_decay: float = bounded(0.0, Range(0, 1))
    logging_steps: int = bounded(1, Range(1, 100_000, integer=True))
    gradient_checkpointing: bool = False  # saves memory on big models, costs ~30 % time

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            isinstance(self.gradient_checkpointing, bool),
            "gradient_checkpointing",
            "must be a bool",
            self.gradient_checkpointing,
        )


@dataclass
class RewardTrainConfig(_TrainConfig):
    """Bradley-Terry reward model: loss = -log sigmoid(r(chosen) - r(rejected)).

    Pairs longer than max_length are dropped by TRL (not truncated); the count is in the metrics.
    """

    learning_rate: float = bounded(1e-4, LEARNING_RATE)
    center_rewards_coefficient: float | None = None  # adds c * mean((r_c + r_r)^2)

    def __post_init__(self) -> None:
        super().__post_init__()
        c = self.center_rewards_coefficient
        _require(
            c is None or (_is_num(c) and 0 <= c <= 100),
            "center_rewards_coefficient",
            "must be None or a number in [0, 100]",
            c,
        )


@dataclass
class DPOTrainConfig(_TrainConfig):
    """Direct Preference Optimisation (Rafailov et al. 2023) through TRL's DPOTrainer.

    TRL's default learning rate (1e-6) suits large pretrained models; small models need more.
    """

    learning_rate: float = bounded(5e-5, LEARNING_RATE)
    beta: float = bounded(0.1, BETA)  # strength of the KL tie to the reference policy
    loss_type: str = "sigmoid"  # one of DPO_LOSS_TYPES
    label_smoothing: float = bounded(0.0, Range(0, 0.5, high_open=True))  # robust/exo_pair/aot
    precompute_ref_log_probs: bool = True  # one reference pass per run, no reference in memory
    lora: bool = False
    lora_r: int = bounded(8, Range(1, 1024, integer=True))
    lora_alpha: int = bounded(16, Range(1, 4096, integer=True))
    lora_dropout: float = bounded(0.05, Range(0, 1, high_open=True))
    lora_target_modules: tuple[str, ...] = ()  # empty: every linear layer except the LM head

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            self.loss_type in DPO_LOSS_TYPES,
            "loss_type",
            f"must be one of {', '.join(DPO_LOSS_TYPES)}",
            self.loss_type,
        )
        if self.loss_type == "exo_pair":
            _require(
                self.label_smoothing > 0,
                "label_smoothing",
                "must be > 0 for loss_type exo_pair",
                self.label_smoothing,
            )
        for name in ("precompute_ref_log_probs", "lora"):
            _require(
                isinstance(getattr(self, name), bool), name, "must be a bool", getattr(self, name)
            )
        if isinstance(self.lora_target_modules, list):
            self.lora_target_modules = tuple(self.lora_target_modules)
        _require(
            isinstance(self.lora_target_modules, tuple)
            and len(self.lora_target_modules) <= 64
            and all(isinstance(m, str) and 0 < len(m) <= 200 for m in self.lora_target_modules),
            "lora_target_modules",
            "must be a list of module names",
            self.lora_target_modules,
        )


SFT_LOSS_TYPES: tuple[str, ...] = ("nll", "dft")
KTO_LOSS_TYPES: tuple[str, ...] = ("kto", "apo_zero_unpaired")
# GRPOTrainer 1.16 loss types that need nothing beyond a reward function.
GRPO_LOSS_TYPES: tuple[str, ...] = ("dapo", "grpo", "dr_grpo", "bnpo")
GRPO_SCALE_REWARDS: tuple[str, ...] = ("group", "batch", "none")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, name, f"must be one of {', '.join(allowed)}", value)


def _bools(obj: Any, *names: str) -> None:
    for name in names:
        _require(isinstance(getattr(obj, name), bool), name, "must be a bool", getattr(obj, name))


@dataclass
class SFTTrainConfig(_TrainConfig):
    """Supervised fine-tuning on demonstrations through TRL's SFTTrainer.

    The loss is on the completion tokens only (the prompt is context, not a target). TRL's
    default learning rate (2e-5) suits large pretrained models; small models need more.
    """

    learning_rate: float = bounded(1e-4, LEARNING_RATE)
    loss_type: str = "nll"  # or "dft" (Dynamic Fine-Tuning)
    completion_only_loss: bool = True
    # Batches of rows of similar length (transformers' LengthGroupedSampler: shuffled, then
    # sorted within groups of 4 to 50 batches), so less padding is computed: docs/training.md.
    group_by_length: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("loss_type", self.loss_type, SFT_LOSS_TYPES)
        _bools(self, "completion_only_loss", "group_by_length")


@dataclass
class KTOTrainConfig(_TrainConfig):
    """Kahneman-Tversky Optimisation (Ethayarajh et al. 2024) on unpaired thumbs up/down.

    The KL term of the loss is estimated from each prompt with another row's completion in the
    same batch, so a batch needs at least 2 rows. TRL's default learning rate is 1e-6.
    """

    learning_rate: float = bounded(5e-5, LEARNING_RATE)
    batch_size: int = bounded(8, Range(2, 1024, integer=True))
    beta: float = bounded(0.1, BETA)
    loss_type: str = "kto"  # or "apo_zero_unpaired" (no KL estimate)
    desirable_weight: float = bounded(1.0, Range(0, 100, low_open=True))
    undesirable_weight: float = bounded(1.0, Range(0, 100, low_open=True))
    precompute_ref_log_probs: bool = True  # one reference pass per run, no reference in memory

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("loss_type", self.loss_type, KTO_LOSS_TYPES)
        _bools(self, "precompute_ref_log_probs")


@dataclass
class _OnlineRLConfig(_TrainConfig):
    """Shared by GRPO and RLOO: sample `num_generations` completions per prompt, score them
    with the reward model, push the policy towards the better ones within each group.

    `batch_size` counts completions per optimiser step (so prompts per step are
    batch_size / num_generations); `max_length` caps prompt tokens + max_completion_length.
    Defaults are for CPU: short completions, small groups.
    """

    learning_rate: float = bounded(2e-5, LEARNING_RATE)
    batch_size: int = bounded(8, Range(2, 1024, integer=True))
    num_generations: int = bounded(4, Range(2, 64, integer=True))
    max_completion_length: int = bounded(32, MAX_NEW_TOKENS)
    temperature: float = bounded(1.0, Range(0, 10, low_open=True))
    top_p: float = bounded(1.0, TOP_P)
    beta: float = bounded(0.04, Range(0, 10))  # KL to the reference; 0: no reference, no KL
    epsilon: float = bounded(0.2, Range(0, 1, low_open=True))  # PPO-style ratio clip
    num_iterations: int = bounded(1, Range(1, 64, integer=True))  # updates per generation batch
    # Optimiser steps served by one generation batch. 4 doubles generation tokens/s on CPU (one
    # generate call of 32 sequences instead of 4 of 8) but TRL then needs a forward pass for
    # the old log-probs, and end to end it measured equal (docs/training.md); steps 2-4 would
    # learn from samples of a policy up to 3 steps old (clipped importance ratio, as in PPO).
    steps_per_generation: int = bounded(1, Range(1, 64, integer=True))
    reward_model_batch_size: int = bounded(32, BATCH_SIZE)

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            self.batch_size % self.num_generations == 0,
            "batch_size",
            f"must be a multiple of num_generations={self.num_generations}",
            self.batch_size,
        )
        _require(
            self.max_completion_length < self.max_length,
            "max_completion_length",
            f"must be < max_length={self.max_length} (room for the prompt)",
            self.max_completion_length,
        )


@dataclass
class GRPOTrainConfig(_OnlineRLConfig):
    """Group Relative Policy Optimisation through TRL's GRPOTrainer: PPO's clipped objective and
    KL penalty, with the group's mean reward as the baseline instead of a value network."""

    loss_type: str = "dapo"
    scale_rewards: str = "group"  # divide advantages by the group's (or batch's) reward std

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("loss_type", self.loss_type, GRPO_LOSS_TYPES)
        _one_of("scale_rewards", self.scale_rewards, GRPO_SCALE_REWARDS)


@dataclass
class RLOOTrainConfig(_OnlineRLConfig):
    """REINFORCE Leave-One-Out through TRL's RLOOTrainer: each completion's baseline is the mean
    reward of the other completions of its prompt. TRL's default beta for RLOO is 0.05."""

    beta: float = bounded(0.05, Range(0, 10))
    normalize_advantages: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _bools(self, "normalize_advantages")


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
    "SFT_LOSS_TYPES",
    "SEED",
    "Range",
    "BootstrapConfig",
    "ConfigError",
    "DPOTrainConfig",
    "EvalConfig",
    "GenerateConfig",
    "GRPOTrainConfig",
    "KTOTrainConfig",
    "RLOOTrainConfig",
    "RewardTrainConfig",
    "SFTTrainConfig",
    "bounded",
    "check_ranges",
    "load_config",
    "ranges",
]
