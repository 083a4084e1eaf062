"""Process-level defaults: offline Hugging Face libraries, OpenMP waiting, device precision.

The variables are set with `os.environ.setdefault`, so a user who exports `HF_HUB_OFFLINE=0`
(a real deployment with internet, pointing a project at a hub model) keeps that choice.
"""

from __future__ import annotations

import os
from typing import Any

OFFLINE_DEFAULTS: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # No experiment tracker may switch itself on because its package happens to be installed.
    "WANDB_DISABLED": "true",
    "WANDB_MODE": "disabled",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    # Workers log to files: no progress bars from datasets.map or TRL's reference pass.
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # The Rust tokenizer's thread pool does not survive fork (Celery prefork workers).
    "TOKENIZERS_PARALLELISM": "false",
    # OpenMP threads sleep when they have no work instead of spinning for it. Read once, when
    # torch loads its OpenMP runtime, so it must be set before `import torch`. Beside a busy
    # process on 2 cores, 2 spinning threads burned 2.7x the CPU of 1 thread per pretraining
    # step and ran 2.4x slower; passive, 2 threads cost what 1 does (docs/benchmarks.md,
    # "First run").
    "OMP_WAIT_POLICY": "PASSIVE",
}


def apply_offline_defaults() -> None:
    """Set offline, no-telemetry defaults unless the caller already chose."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def device_kind() -> str:
    """Return "cuda", "mps" or "cpu": where training and generation will run."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def trainer_precision_args() -> dict[str, Any]:
    """TrainingArguments for the device: fp32 on CPU (TRL defaults to bf16, 2-4x slower there).

    A GPU with bf16 gets bf16 mixed precision, an older GPU fp16; CPU and MPS stay in fp32.
    """
    import torch

    kind = device_kind()
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return {"bf16": True, "fp16": False, "use_cpu": False}
        return {"bf16": False, "fp16": True, "use_cpu": False}
    return {"bf16": False, "fp16": False, "use_cpu": kind == "cpu"}


def common_trainer_args() -> dict[str, Any]:
    """Arguments every TRL trainer here shares: quiet, no checkpoints mid-run, no reporting."""
    return {
        "report_to": "none",
        "save_strategy": "no",
        "disable_tqdm": True,
        "activation_checkpointing": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        **trainer_precision_args(),
    }


def limit_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (None: leave as is); returns the count in effect.

    On a shared 2-core machine (web server, database, other workers busy) two OpenMP threads
    spin-wait for each other: reward-model training measured 13x slower with 2 threads than
    with 1 at a load average of 5. Give each concurrent torch process cores / processes threads.
    """
    import torch

    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads: must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()
