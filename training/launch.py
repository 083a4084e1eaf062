"""Run any training stage's train function as N ranks under torchrun or `accelerate launch`.

    train = stage_runner("training.dpo:train_dpo", WorkerProfile.from_env())
    result = train(policy_dir, pairs, out_dir, config, progress)   # same call as train_dpo

With one process (the default) `stage_runner` returns the train function itself: it runs in the
caller's process exactly as before. Otherwise `launch_train` writes a run directory (spec, rows)
and starts the launcher with `subprocess.Popen` in its own session (Python multiprocessing
cannot start children inside a Celery prefork child), then polls every `POLL_S`:

- rank 0's events (progress with its metrics, heartbeats; see `training.rank`) go to the
  caller's `progress(step, total, metrics)`; between events it is called with `{}` so that its
  return value (True: stop) is read at least every `POLL_S` even while the ranks load;
- a stop request kills every process of the run (launcher and ranks, which torchrun starts in
  sessions of their own) and returns a result with `stopped=True` and no output;
- a rank that fails ends the run with `RankFailed` naming that rank and giving its error
  (traceback line, or the signal that killed it) and the tail of its log;
- rank 0 silent (no event) for `profile.stall_seconds` fails the run the same way;
- exit code 0 with rank 0's result: `TrainResult` as the in-process function returns it, its
  metrics extended with `launch` (`WorkerProfile.describe()`: host, launcher, ranks, ...).

`launch_status(result_or_exception)` maps the outcome to the job's status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.data import write_jsonl
from training.env import TRAINER_OVERRIDES_VAR
from training.profile import WorkerProfile
from training.progress import Progress
from training.rank import EVENTS, RESULT, SPEC, die_with_parent, import_object, load_prctl
from training.results import TrainResult

POLL_S = 0.25
HEARTBEAT_S = 5.0  # rank 0's heartbeat period
TERM_GRACE_S = 3.0  # after SIGTERM, survivors get SIGKILL
TAIL_LINES = 20

SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"


class RankFailed(RuntimeError):
    """A rank (or the launcher) failed; `rank` is None when no rank is to blame."""

    def __init__(self, message: str, rank: int | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.rank = rank
        self.exit_code = exit_code


def launch_status(outcome: TrainResult | BaseException) -> str:
    """The job status an outcome maps to: succeeded, cancelled (stopped) or failed."""
    if isinstance(outcome, BaseException):
        return FAILED
    return CANCELLED if outcome.stopped else SUCCEEDED


def stage_runner(train: str | Callable[..., Any], profile: WorkerProfile) -> Callable[..., Any]:
    """A callable with the train function's signature that runs it as the profile says."""
    function = import_object(train) if isinstance(train, str) else train
    if not profile.distributed:
        return function
    path = train if isinstance(train, str) else f"{function.__module__}:{function.__qualname__}"

    def run(*args: Any, progress: Progress | None = None, **kwargs: Any) -> TrainResult:
        """`(start, [reward_model,] rows, [*also,] out_dir, config[, progress], **kwargs)`:
        paths are models, lists are rows; keyword arguments go to every rank as JSON."""
        if len(args) >= 5 and progress is None and (args[-1] is None or callable(args[-1])):
            *args, progress = args  # type: ignore[assignment]
        *inputs, out_dir, config = args
        models = [a for a in inputs if isinstance(a, str | os.PathLike)]
        rows = [a for a in inputs if not isinstance(a, str | os.PathLike)]
        if inputs[: len(models)] != models or not rows:
            raise ValueError("inputs: the model paths first, then one or more lists of rows")
        return launch_train(
            path, models, rows[0], out_dir, config,
            also=rows[1:], kwargs=kwargs, progress=progress, profile=profile,
        )  # fmt: skip

    return run


def launch_command(profile: WorkerProfile, run_dir: Path) -> list[str]:
    """The launcher's command line for `profile` (torchrun, or accelerate with its config)."""
    entry = ["-m", "training.rank", str(run_dir)]
    n = str(profile.processes)
    if profile.launcher_name() == "accelerate":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", n]
        if profile.accelerate_config:
            cmd += ["--config_file", profile.accelerate_config_path()]
        if profile.mixed_precision != "auto":
            cmd += ["--mixed_precision", profile.mixed_precision]
        return [*cmd, *entry]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, f"--nproc_per_node={n}", "--monitor-interval=0.2", *entry]


def launch_train(
    train: str,
    models: Sequence[str],
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: Any,
    *,
    also: Sequence[Sequence[dict[str, Any]]] = (),
    kwargs: dict[str, Any] | None = None,
    progress: Progress | None = None,
    profile: WorkerProfile,
    run_dir: str | Path | None = None,
) -> TrainResult:
    """Run `train(*models, rows, *also, out_dir, config, progress, **kwargs)` on every rank;
    see the module doc. `also`: further lists of rows (online DPO's human pairs); `kwargs`:
    keyword arguments with JSON values (the divergence detector's judge and its prompts).

    `run_dir` keeps the run's files (logs, events) for inspection; by default a temporary
    directory that is removed afterwards.
    """
    if not hasattr(config, "to_dict"):
        raise ValueError(f"config: the stage's config object is needed, got {config!r}")
    import torch

    profile.check_run(config, cuda=torch.cuda.is_available())
    kwargs = dict(kwargs or {})
    for name, value in kwargs.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: ranks take JSON values only, got {value!r}") from None
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="ranks-") as tmp:
            return launch_train(
                train, models, rows, out_dir, config, also=also, kwargs=kwargs,
                progress=progress, profile=profile, run_dir=tmp,
            )  # fmt: skip
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / "rows.jsonl", list(rows))
    for i, more in enumerate(also):
        write_jsonl(run_dir / f"rows-{i + 1}.jsonl", list(more))
    spec = {
        "train": train,
        "config_class": f"{type(config).__module__}:{type(config).__qualname__}",
        "config": config.to_dict(),
        "models": [str(m) for m in models],
        "rows": "rows.jsonl",
        "also": [f"rows-{i + 1}.jsonl" for i in range(len(also))],
        "kwargs": kwargs,
        "out_dir": str(out_dir),
        "threads": profile.threads_per_process(),
        "heartbeat_s": HEARTBEAT_S,
        "trainer_overrides": profile.trainer_overrides(),
        "overrides_var": TRAINER_OVERRIDES_VAR,
    }
    (run_dir / SPEC).write_text(json.dumps(spec, indent=2))
    env = {**os.environ, "OMP_NUM_THREADS": str(profile.threads_per_process())}
    load_prctl()  # before the fork: `die_with_parent` then only makes a system call
    with (run_dir / "launcher.log").open("wb") as log:
        proc = subprocess.Popen(
            launch_command(profile, run_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: killed as one, apart from the worker
            preexec_fn=die_with_parent,  # a worker killed outright takes its launcher along
        )
    try:
        status = _watch(proc, run_dir, progress, profile.stall_seconds)
    finally:
        kill_run(proc, run_dir)  # nothing outlives the call, whatever happened
    if status == CANCELLED:
        return TrainResult(output_dir=str(out_dir), metrics={}, stopped=True)
    result = json.loads((run_dir / RESULT).read_text())
    result["metrics"]["launch"] = profile.describe()
    return TrainResult(**result)


def _watch(proc: subprocess.Popen, run_dir: Path, progress: Progress | None, stall_s: float) -> str:
    """Poll until the launcher exits (or a stop, or a stall); returns SUCCEEDED or CANCELLED."""
    reader = _EventReader(run_dir / EVENTS)
    step, total = 0, 0
    last_event = time.monotonic()
    while True:
        code = proc.poll()
        events = reader.read()
        if events:
            last_event = time.monotonic()
        for event in events:
            if event.get("type") == "progress":
                step, total = int(event["step"]), int(event["total"])
                if progress and progress(step, total, event.get("metrics") or {}):
                    return CANCELLED
        if code is not None:
            if code == 0 and (run_dir / RESULT).exists():
                return SUCCEEDED
            raise rank_failure(run_dir, code)
        if progress and progress(step, total, {}):
            return CANCELLED
        if time.monotonic() - last_event > stall_s:
            raise RankFailed(
                f"rank 0 sent nothing for {stall_s:.0f} s (no progress, no heartbeat)\n"
                + _tail(run_dir / "rank-0.log"),
                rank=0,
            )
        time.sleep(POLL_S)


class _EventReader:
    """Reads the complete JSON lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]


def rank_failure(run_dir: Path, code: int) -> RankFailed:
    """The failure to report: a rank killed by a signal first (it is a cause, never an effect),
    else the earliest Python error among the ranks, else the launcher's own output."""
    killed = _killed_ranks(run_dir)
    if killed:
        rank, sig = killed[0]
        return RankFailed(
            f"rank {rank} was killed by {sig}\n" + _tail(run_dir / f"rank-{rank}.log"),
            rank=rank,
            exit_code=code,
        )
    errors = []
    for path in run_dir.glob("rank-*.error"):
        try:
            errors.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    if errors:
        first = min(errors, key=lambda e: e["time"])
        rank = int(first["rank"])
        return RankFailed(
            f"rank {rank} failed: {first['error']}\n" + _tail(run_dir / f"rank-{rank}.log"),
            rank=rank,
            exit_code=code,
        )
    return RankFailed(
        f"launcher exited with code {code}\n" + _tail(run_dir / "launcher.log"), exit_code=code
    )


def _killed_ranks(run_dir: Path) -> list[tuple[int, str]]:
    """(rank, signal name) of ranks torchrun reports killed by a signal, from its summary."""
    text = _read(run_dir / "launcher.log")
    out: list[tuple[int, str]] = []
    rank: int | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("rank") and ":" in line:
            try:
                rank = int(line.split(":", 1)[1].split()[0])
            except (ValueError, IndexError):
                rank = None
        elif line.startswith("exitcode") and rank is not None:
            try:
                code = int(line.split(":", 1)[1].split()[0])
            except (ValueError, IndexError):
                continue
            # SIGTERM is what torchrun sends the survivors of another rank's failure.
            if code < 0 and -code != signal.SIGTERM and rank not in [r for r, _ in out]:
                out.append((rank, signal.Signals(-code).name))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


def run_pids(proc: subprocess.Popen, run_dir: Path) -> set[int]:
    """Every live process of the run: the launcher, its descendants, and the ranks' pid files."""
    import psutil

    pids: set[int] = set()
    try:
        launcher = psutil.Process(proc.pid)
        pids.add(launcher.pid)
        pids.update(p.pid for p in launcher.children(recursive=True))
    except psutil.NoSuchProcess:
        pass
    for path in run_dir.glob("rank-*.pid"):
        try:
            pid = int(path.read_text())
            # A pid file may outlive its process: only a process still running this run counts.
            if str(run_dir) in " ".join(psutil.Process(pid).cmdline()):
                pids.add(pid)
        except (ValueError, OSError, psutil.Error):
            continue
    return pids


def kill_run(proc: subprocess.Popen, run_dir: Path) -> None:
    """Stop every process of the run: SIGTERM, then SIGKILL after `TERM_GRACE_S`; reap."""
    import psutil

    procs = []
    for pid in run_pids(proc, run_dir):
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=TERM_GRACE_S)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=TERM_GRACE_S)
    try:
        proc.wait(timeout=TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
