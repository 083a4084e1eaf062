"""The parts every run configuration shares: `ConfigError`, `Range` and the `_Config` base.

Split from `training/config.py` (issue 20: modules under ~500 lines); import the configs from
there, which re-exports these names.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self


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
