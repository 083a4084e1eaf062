"""Files written beside every checkpoint: the run config and its metrics (with history).

`training_config.json` holds the config (HF's own `config.json` is the model's architecture);
`metrics.json` holds final metrics, the per-step history and whether the run was stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"


def write_run_files(
    out_dir: str | Path,
    config: Any,
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    stopped: bool,
) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out)
    payload = {"metrics": metrics, "history": history, "stopped": stopped}
    (out / METRICS_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_metrics(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / METRICS_FILE).read_text())
