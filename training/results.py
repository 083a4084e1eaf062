"""What long functions return: metrics, whether they were stopped, where the output is."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainResult:
    """A finished (or stopped, still loadable) training run."""

    output_dir: str
    metrics: dict[str, Any]
    stopped: bool = False
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per logged step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
