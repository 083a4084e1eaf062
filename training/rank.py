"""What each rank of a multi-process training run executes: `python -m training.rank RUN_DIR`.

`training.launch` writes RUN_DIR/spec.json (the train function as "module:function", its config
class and values, the model paths, the rows files, keyword arguments, the output directory) and
starts N of these under torchrun or `accelerate launch`, which set RANK / WORLD_SIZE /
LOCAL_RANK. Every rank calls the same train function (the stage's own, unchanged); TRL's
trainers see the launcher's environment and run DDP (gloo on CPU, NCCL on GPU) or FSDP /
DeepSpeed from the accelerate config. Files each rank leaves in RUN_DIR (the launcher's only
channel, so nothing depends on the launcher's own output format):

- rank-K.log: the rank's stdout and stderr (the tail becomes the error of a failed run);
- rank-K.pid: its pid, so a cancel can find it even if the launcher died first;
- rank-K.error: JSON {rank, error, traceback, time} when it raised;
- events.jsonl (rank 0 only): one JSON object a line, {"type": "progress", step, total,
  metrics} per optimiser step and {"type": "heartbeat"} every few seconds;
- result.json (rank 0 only, written by rename): the TrainResult.

Every rank calls the train function's save (`training.saving`): with a sharded profile (FSDP,
ZeRO-3) the weights are gathered collectively, so a rank that skipped it would hang the others;
only the main process (rank 0) writes the model, into the output directory. Other ranks' run
files (config, metrics) land in RUN_DIR/rank-K-out, thrown away with the run.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

SPEC = "spec.json"
EVENTS = "events.jsonl"
RESULT = "result.json"


def import_object(path: str) -> Any:
    """`module:qualname` -> the object (a train function or a config class)."""
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


_PRCTL: list[Any] = []  # libc's prctl, resolved once (see `die_with_parent`)


def load_prctl() -> None:
    """Resolve prctl now: `die_with_parent` may run between fork and exec, where loading a
    library could deadlock on a lock another thread of the worker held at the fork."""
    if not _PRCTL:
        try:
            _PRCTL.append(ctypes.CDLL("libc.so.6", use_errno=True).prctl)
        except OSError:  # not glibc Linux: no parent-death signal, the launcher's kill remains
            _PRCTL.append(None)


def die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this process when the thread that started it exits, so no
    orphaned rank (or launcher) keeps a core busy after its worker was killed outright."""
    load_prctl()
    if _PRCTL[0] is not None:
        _PRCTL[0](1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Events:
    """Rank 0's JSON-lines writer (progress and heartbeat share it from two threads)."""

    def __init__(self, path: Path, heartbeat_s: float) -> None:
        self._file: TextIO = path.open("a", buffering=1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_s,), daemon=True)
        self._beat.start()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps({**event, "time": time.time()}, default=float)
        with self._lock:
            self._file.write(line + "\n")

    def progress(self, step: int, total: int, metrics: dict) -> bool:
        self.write({"type": "progress", "step": step, "total": total, "metrics": metrics})
        return False  # a cancel kills the whole group: ranks must never stop one by one

    def _heartbeat(self, every: float) -> None:
        self.write({"type": "heartbeat"})
        while not self._stop.wait(every):
            self.write({"type": "heartbeat"})

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._file.close()


def _share_datasets_cache(path: Path) -> None:
    """Name an in-memory dataset's cache file by its fingerprint, in one directory for all ranks.

    TRL's reference pass (DPO, KTO with `precompute_ref_log_probs`) broadcasts rank 0's dataset
    fingerprint, has rank 0 write the log-probs to `dataset._get_cache_file_path(fingerprint)`
    and the other ranks read that path. For a dataset built in memory (`Dataset.from_list`, as
    every train function here builds its rows) datasets 5.2 answers a random name in a
    temporary directory of each process's own, so rank 1 looked for a file that never existed.
    Only that call names a file for an in-memory dataset (`map` writes none unless given a
    name), so the change reaches nothing else; a dataset read from disk keeps its own rule.
    """
    from datasets import Dataset

    path.mkdir(exist_ok=True)
    original = Dataset._get_cache_file_path

    def cache_file_path(self: Any, fingerprint: str) -> str:
        if self.cache_files:
            return original(self, fingerprint)
        return str(path / f"cache-{fingerprint}.arrow")

    Dataset._get_cache_file_path = cache_file_path  # type: ignore[method-assign]


def _leave_group() -> None:
    """Destroy the process group if the run left one: gloo's threads abort an exit without."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run(run_dir: Path) -> int:
    spec = json.loads((run_dir / SPEC).read_text())
    rank = int(os.environ.get("RANK", "0"))
    die_with_parent()
    log = (run_dir / f"rank-{rank}.log").open("a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    (run_dir / f"rank-{rank}.pid").write_text(str(os.getpid()))
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: every thread's stack to the log
    os.environ[spec["overrides_var"]] = json.dumps(spec["trainer_overrides"])
    events = Events(run_dir / EVENTS, spec["heartbeat_s"]) if rank == 0 else None
    try:
        from training.env import apply_offline_defaults, limit_threads

        apply_offline_defaults()
        limit_threads(spec["threads"])
        _share_datasets_cache(run_dir / "datasets-cache")
        train = import_object(spec["train"])
        config = import_object(spec["config_class"]).from_dict(spec["config"])
        from training.data import read_jsonl

        rows = [read_jsonl(run_dir / name) for name in [spec["rows"], *spec.get("also", [])]]
        out = spec["out_dir"] if rank == 0 else str(run_dir / f"rank-{rank}-out")
        progress = events.progress if events else None
        result = train(*spec["models"], *rows, out, config, progress, **spec.get("kwargs", {}))
        _leave_group()
        if rank == 0:
            payload = {
                "output_dir": result.output_dir,
                "metrics": result.metrics,
                "stopped": result.stopped,
                "history": getattr(result, "history", []),
            }
            tmp = run_dir / (RESULT + ".tmp")
            tmp.write_text(json.dumps(payload, default=str))
            tmp.rename(run_dir / RESULT)
        return 0
    except BaseException as exc:
        error = {
            "rank": rank,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "time": time.time(),
        }
        (run_dir / f"rank-{rank}.error").write_text(json.dumps(error))
        traceback.print_exc()
        return 1
    finally:
        if events:
            events.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m training.rank RUN_DIR")
    sys.exit(run(Path(args[0])))


if __name__ == "__main__":
    main()
