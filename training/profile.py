"""The worker profile: how a training worker runs a job's ranks, read from its environment.

One process is the default (a laptop, the embedded `make run`): every stage then trains in the
worker's own process exactly as before. A GPU machine sets, for example,
`TRAIN_PROCESSES=8 TRAIN_ACCELERATE_CONFIG=zero2` and each training job runs 8 ranks under
`accelerate launch` with TRL's shipped ZeRO-2 config. A job may override any field
(`WorkerProfile.from_env(overrides={"processes": 2})`); unknown or invalid values raise
`ProfileError` naming the variable or field. docs/training.md, "More than one process", lists
the variables.

| variable | field | default |
|---|---|---|
| TRAIN_PROCESSES | processes (ranks per job) | 1 |
| TRAIN_LAUNCHER | launcher: torchrun or accelerate | torchrun (accelerate with a config) |
| TRAIN_MIXED_PRECISION | mixed_precision: auto, no, bf16, fp16 | auto (bf16/fp16 GPU, fp32 CPU) |
| TRAIN_ACCELERATE_CONFIG | accelerate_config: a path, or a TRL config name | none |
| TRAIN_DEEPSPEED_CONFIG | deepspeed_config: a DeepSpeed JSON path | none |
| TRAIN_THREADS_PER_PROCESS | threads (torch threads per rank) | cores / processes |
| TRAIN_LORA, TRAIN_LORA_R, TRAIN_LORA_ALPHA | lora, lora_r, lora_alpha defaults | config's own |
| TRAIN_STALL_SECONDS | stall_seconds: rank 0 silent this long fails the run | 600 |
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

LAUNCHERS = ("torchrun", "accelerate")
PRECISIONS = ("auto", "no", "bf16", "fp16")
# The accelerate configs TRL ships (trl/accelerate_configs/<name>.yaml), by name.
TRL_ACCELERATE_CONFIGS = ("multi_gpu", "single_gpu", "fsdp1", "fsdp2", "zero1", "zero2", "zero3")
# Accelerate turns FSDP and DeepSpeed on only for GPU-like devices (accelerate 1.15,
# `AcceleratorState`): on CPU the same config trains DDP, every rank a whole copy of the model
# (checked here: TRL's fsdp2 config with `use_cpu` ran DDP's reducer on both ranks).
SHARDED_NEEDS = "a sharded profile (FSDP, ZeRO-3) needs GPUs: on CPU accelerate trains it as DDP"

_ENV: dict[str, str] = {
    "processes": "TRAIN_PROCESSES",
    "launcher": "TRAIN_LAUNCHER",
    "mixed_precision": "TRAIN_MIXED_PRECISION",
    "accelerate_config": "TRAIN_ACCELERATE_CONFIG",
    "deepspeed_config": "TRAIN_DEEPSPEED_CONFIG",
    "threads": "TRAIN_THREADS_PER_PROCESS",
    "lora": "TRAIN_LORA",
    "lora_r": "TRAIN_LORA_R",
    "lora_alpha": "TRAIN_LORA_ALPHA",
    "stall_seconds": "TRAIN_STALL_SECONDS",
}


class ProfileError(ValueError):
    """A profile value is invalid; the message names the variable or field."""


@dataclass(frozen=True)
class WorkerProfile:
    """How this worker runs a training job (see the module docstring for the variables)."""

    processes: int = 1
    launcher: str = ""  # "": torchrun, or accelerate when an accelerate config is given
    mixed_precision: str = "auto"
    accelerate_config: str = ""
    deepspeed_config: str = ""
    threads: int | None = None
    lora: bool | None = None  # None: the stage config's own default
    lora_r: int | None = None
    lora_alpha: int | None = None
    stall_seconds: float = 600.0

    def __post_init__(self) -> None:
        _check(isinstance(self.processes, int) and 1 <= self.processes <= 1024, "processes",
               "must be an integer in [1, 1024]", self.processes)  # fmt: skip
        _check(self.launcher in ("", *LAUNCHERS), "launcher",
               f"must be one of {', '.join(LAUNCHERS)}", self.launcher)  # fmt: skip
        _check(self.mixed_precision in PRECISIONS, "mixed_precision",
               f"must be one of {', '.join(PRECISIONS)}", self.mixed_precision)  # fmt: skip
        _check(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
               "threads", "must be an integer >= 1", self.threads)  # fmt: skip
        for name in ("lora_r", "lora_alpha"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and value >= 1), name,
                   "must be an integer >= 1", value)  # fmt: skip
        _check(self.lora is None or isinstance(self.lora, bool), "lora", "must be a bool",
               self.lora)  # fmt: skip
        _check(isinstance(self.stall_seconds, int | float) and self.stall_seconds > 0,
               "stall_seconds", "must be > 0", self.stall_seconds)  # fmt: skip
        if self.accelerate_config:
            self.accelerate_config_path()  # raises on a missing file or unknown name
        if self.deepspeed_config and not Path(self.deepspeed_config).is_file():
            raise ProfileError(f"deepspeed_config: no such file {self.deepspeed_config!r}")

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
    ) -> Self:
        """The profile from `environ` (default: os.environ), then a job's `overrides` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            raw = env.get(var, "").strip()
            if raw:
                values[name] = _parse(var, name, raw)
        unknown = sorted(set(overrides or {}) - set(_ENV))
        if unknown:
            raise ProfileError(f"{', '.join(unknown)}: unknown profile field(s)")
        values.update(overrides or {})
        return cls(**values)

    @property
    def distributed(self) -> bool:
        """More than one process, or an accelerate config: ranks run under a launcher."""
        return self.processes > 1 or bool(self.accelerate_config)

    def launcher_name(self) -> str:
        return self.launcher or ("accelerate" if self.accelerate_config else "torchrun")

    def accelerate_config_path(self) -> str:
        """The accelerate config file: a path, or the file TRL ships under that name."""
        if not self.accelerate_config:
            return ""
        if self.accelerate_config in TRL_ACCELERATE_CONFIGS:
            import importlib.util

            spec = importlib.util.find_spec("trl")
            if spec is None or spec.origin is None:
                raise ProfileError("accelerate_config: trl is not installed")
            path = (
                Path(spec.origin).parent / "accelerate_configs" / f"{self.accelerate_config}.yaml"
            )
        else:
            path = Path(self.accelerate_config)
        if not path.is_file():
            raise ProfileError(f"accelerate_config: no such file {str(path)!r}")
        return str(path)

    @property
    def sharded(self) -> bool:
        """FSDP or DeepSpeed ZeRO-3: each rank holds a slice of the weights, so saving gathers
        them collectively on every rank (training/saving.py)."""
        if self.deepspeed_config and _zero_stage(self.deepspeed_config) == 3:
            return True
        if not self.accelerate_config:
            return False
        import yaml

        values = yaml.safe_load(Path(self.accelerate_config_path()).read_text()) or {}
        kind = str(values.get("distributed_type", "")).upper()
        zero = (values.get("deepspeed_config") or {}).get("zero_stage")
        return kind == "FSDP" or (kind == "DEEPSPEED" and zero == 3)

    def check_run(self, config: Any, *, cuda: bool) -> None:
        """Refuse, before any work, a run this profile cannot shard as asked (ProfileError)."""
        if not self.sharded:
            return
        field = "deepspeed_config" if self.deepspeed_config else "accelerate_config"
        if not cuda:
            raise ProfileError(f"{field}: {SHARDED_NEEDS}")
        if getattr(config, "lora", False):
            raise ProfileError(
                "lora: adapters cannot be merged into a sharded (FSDP, ZeRO-3) model; "
                "train LoRA with DDP or ZeRO-1/2"
            )

    def threads_per_process(self) -> int:
        """Torch threads per rank: the cores shared out, at least one."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.processes)

    def trainer_overrides(self) -> dict[str, Any]:
        """TrainingArguments every rank's trainer gets on top of `env.common_trainer_args`."""
        out: dict[str, Any] = {}
        if self.mixed_precision == "no":
            out.update(bf16=False, fp16=False)
        elif self.mixed_precision in ("bf16", "fp16"):
            out.update(bf16=self.mixed_precision == "bf16", fp16=self.mixed_precision == "fp16")
        if self.deepspeed_config:
            out["deepspeed"] = self.deepspeed_config
        return out

    def config_defaults(self, config_cls: type) -> dict[str, Any]:
        """LoRA defaults for the config fields `config_cls` has (a job's own values win)."""
        names = {f.name for f in dataclasses.fields(config_cls)}
        values = {"lora": self.lora, "lora_r": self.lora_r, "lora_alpha": self.lora_alpha}
        return {k: v for k, v in values.items() if v is not None and k in names}

    def describe(self, backend: str | None = None) -> dict[str, Any]:
        """Where and how a job ran, for the job page: host, launcher, ranks, backend, precision."""
        import torch

        gpu = torch.cuda.is_available()
        return {
            "host": socket.gethostname(),
            "launcher": self.launcher_name() if self.distributed else "in-process",
            "processes": self.processes,
            "backend": backend or (("nccl" if gpu else "gloo") if self.distributed else "none"),
            "device": "cuda" if gpu else "cpu",
            "mixed_precision": self.mixed_precision,
            "accelerate_config": self.accelerate_config or None,
            "deepspeed_config": self.deepspeed_config or None,
            "sharded": self.sharded,
            "threads_per_process": self.threads_per_process(),
        }


def _zero_stage(path: str) -> int | None:
    """The ZeRO stage of a DeepSpeed JSON config (None when it names none)."""
    import json

    try:
        stage = json.loads(Path(path).read_text()).get("zero_optimization", {}).get("stage")
    except (OSError, ValueError, AttributeError):
        raise ProfileError(f"deepspeed_config: not a DeepSpeed JSON config: {path!r}") from None
    return stage if isinstance(stage, int) else None


def _check(ok: bool, name: str, rule: str, value: Any) -> None:
    if not ok:
        raise ProfileError(f"{name}: {rule}, got {value!r}")


def _parse(var: str, name: str, raw: str) -> Any:
    """An environment string as the field's type."""
    if name in ("processes", "threads", "lora_r", "lora_alpha"):
        try:
            return int(raw)
        except ValueError:
            raise ProfileError(f"{var}: must be an integer, got {raw!r}") from None
    if name == "stall_seconds":
        try:
            return float(raw)
        except ValueError:
            raise ProfileError(f"{var}: must be a number, got {raw!r}") from None
    if name == "lora":
        lowered = raw.lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no"):
            raise ProfileError(f"{var}: must be true or false, got {raw!r}")
        return lowered in ("1", "true", "yes")
    return raw
