"""What a lost pool child does to a real worker, for each pool and acknowledgement option.

Run: .venv/bin/python bench/worker_faults.py [--configs NAME ...] [--rounds 1]

The broker and database are the configured ones (`CELERY_BROKER_URL` / `DATABASE_URL`; the
embedded filesystem broker and SQLite in a temporary folder when unset), so run it once per
backend. For each worker configuration it starts one real `celery worker` (concurrency 1) and
plays the issue's two scenes through real jobs:

- idle: a job runs, 5 s later the idle process that runs jobs (the pool child; the worker itself
  under solo and threads) is SIGKILLed, as the OOM killer would after a training job left the
  model in memory, then another job is launched.
- busy: a DPO job on a tiny model is SIGKILLed mid-training the same way, then another job.

It prints one markdown row a configuration (docs/architecture.md, "Workers and lost children").
`--smoke` (tests): the idle scene once, as shipped, with a 1 s pause: runs end to end, proves
nothing about faults.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (worker CLI options, Celery settings applied before the worker starts). Each sets
# every knob measured here, so the project's own defaults do not leak into a row; "as
# configured" is the project's choice for the broker in use (feedback_app/settings.py).
_BASE = {"worker_max_tasks_per_child": None, "task_reject_on_worker_lost": False}
CONFIGS: dict[str, tuple[list[str], dict]] = {
    "prefork": ([], {**_BASE, "worker_pool": "prefork"}),
    "prefork+reject": ([], {**_BASE, "worker_pool": "prefork", "task_reject_on_worker_lost": True}),
    "prefork+max-tasks-1": (
        [],
        {**_BASE, "worker_pool": "prefork", "worker_max_tasks_per_child": 1},
    ),
    "prefork+max-memory": (
        ["--max-memory-per-child", "300000"],
        {**_BASE, "worker_pool": "prefork"},
    ),
    "threads": ([], {**_BASE, "worker_pool": "threads"}),
    "solo": ([], {**_BASE, "worker_pool": "solo"}),
    "as configured": ([], {}),
    "as shipped": ([], {}),
}
SUPERVISED = {"as shipped"}  # the project's settings, under bin/supervise as `make run` runs it
LONG_DPO = {"epochs": 200, "batch_size": 2, "max_length": 48}
WAIT = 30.0  # seconds a job may take to finish before it counts as stuck
IDLE_S = 5.0  # how long the pool child sits idle before it is killed


def _setup() -> None:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("CELERY_BROKER_URL"):
        var = Path(tempfile.mkdtemp(prefix="bench-faults-"))
        os.environ["VAR_DIR"] = str(var)
    os.environ.update(DJANGO_SETTINGS_MODULE="feedback_app.settings", SECRET_KEY="bench")
    os.environ.update(JOB_HEARTBEAT_SECONDS="0.5", JOB_STALE_AFTER_SECONDS="4")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _purge() -> None:
    from feedback_app.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "generation", "training"):
            conn.default_channel.queue_declare(queue=queue)
            conn.default_channel.queue_purge(queue)


def _start_worker(
    options: list[str], conf: dict, log: Path, supervised: bool = False
) -> subprocess.Popen:
    code = (
        "import json, sys; from feedback_app.celery import app; "
        "app.conf.update(json.loads(sys.argv[1])); app.worker_main(sys.argv[2:])"
    )
    args = ["worker", "--queues", "default,generation,training", "--concurrency", "1"]
    args += ["--loglevel", "INFO", "--without-mingle", "--without-gossip", *options]
    supervise = [str(ROOT / "bin" / "supervise")] if supervised else []
    proc = subprocess.Popen(
        [*supervise, sys.executable, "-c", code, json.dumps(conf), *args], cwd=ROOT,
        env=os.environ.copy(),
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)
    return proc


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM, as `docker stop` or Ctrl-C would; say whether the worker obeyed."""
    if proc.poll() is not None:
        return "(already dead)"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
        return "stops"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "**ignored**"


def _wait(job, timeout: float = WAIT, until=("succeeded", "failed", "cancelled")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in until:
            return job
        time.sleep(0.2)
    return job


def _pid(job) -> int:
    return int(job.worker.rsplit(":", 1)[1])


def _children(pid: int) -> list[int]:
    ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in ps.stdout.split()]


def _idle_job_processes(proc: subprocess.Popen, supervised: bool) -> list[int]:
    """The processes that would run the next job: the pool children, or the worker (solo).

    Not the pid in the last job's `worker`: with max-tasks-per-child 1 that child is gone.
    """
    worker = _children(proc.pid)[0] if supervised else proc.pid
    return _children(worker) or [worker]


def _outcome(job, proc) -> str:
    if job.status == "succeeded":
        return "runs"
    if proc.poll() is not None:
        return "worker gone"
    return f"**stays {job.status}**"


def idle_scene(name: str, project, log: Path) -> tuple[str, str]:
    from feedback_app.finetuning import services

    options, conf = CONFIGS[name]
    _purge()
    proc = _start_worker(options, conf, log, supervised=name in SUPERVISED)
    try:
        first = _wait(services.job_launch(project=project, kind="build_dataset", params={}))
        assert first.status == "succeeded", first.error
        time.sleep(IDLE_S)
        for pid in _idle_job_processes(proc, name in SUPERVISED):
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        second = _wait(services.job_launch(project=project, kind="build_dataset", params={}))
        return _outcome(second, proc), _stop(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def busy_scene(name: str, project, log: Path) -> tuple[str, str, str]:
    from feedback_app.finetuning import services

    options, conf = CONFIGS[name]
    _purge()
    proc = _start_worker(options, conf, log, supervised=name in SUPERVISED)
    try:
        dpo = services.job_launch(
            project=project,
            kind="train_dpo",
            params={**LONG_DPO, "snapshot": project.training_snapshot},
        )
        deadline = time.monotonic() + 120
        while not dpo.metric_history and time.monotonic() < deadline:
            time.sleep(0.2)
            dpo.refresh_from_db()
        assert dpo.status == "running", (dpo.status, dpo.error)
        os.kill(_pid(dpo), signal.SIGKILL)
        time.sleep(1)
        after = _wait(services.job_launch(project=project, kind="build_dataset", params={}))
        time.sleep(1)
        text = log.read_text()
        redelivered = f"job {dpo.pk} not claimed" in text
        message = "redelivered (claim: no-op)" if redelivered else "acked, dropped"
        if "WorkerLostError" not in text and not redelivered:  # the worker itself died
            from django.conf import settings

            redis = settings.CELERY_BROKER_URL.startswith("redis")
            message = "left unacked" if redis else "lost with the worker"
        return message, _outcome(after, proc), _stop(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _project():
    from feedback_app.annotation.importing import check_records
    from feedback_app.annotation.services import prompts_import
    from feedback_app.core.models import DatasetSnapshot, Project
    from feedback_app.finetuning import versions
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig
    from training.data import write_jsonl

    project = Project.objects.create(name=f"faults-{time.time()}", candidates_per_task=2)
    prompts_import(project=project, records=check_records([(1, {"prompt": "x"})], k=2))
    tiny = bootstrap_base_model(ROOT / ".cache" / "test-models", BootstrapConfig.tiny()).output_dir
    versions.model_register(project=project, kind="policy", name="base", weights=tiny)
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-snapshot-"))
    pairs = [
        {"prompt": f"The value {i} is", "chosen": " useful and valid.", "rejected": " an error."}
        for i in range(8)
    ]
    write_jsonl(folder / "train.jsonl", pairs)
    write_jsonl(folder / "test.jsonl", [])
    snapshot = DatasetSnapshot.objects.create(
        project=project, content_hash=folder.name, policy={}, test_fraction=0.0, seed=0,
        path=str(folder), format="standard", counts={"train": len(pairs), "test": 0},
    )  # fmt: skip
    project.training_snapshot = snapshot.pk  # the idle scene's own snapshots have no pairs
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=1, help="repeat the idle scene")
    parser.add_argument("--skip-busy", action="store_true")
    parser.add_argument(
        "--smoke", action="store_true", help="as shipped, idle scene, 1 s: no findings"
    )
    args = parser.parse_args()
    if args.smoke:
        global IDLE_S
        args.configs, args.rounds, args.skip_busy, IDLE_S = ["as shipped"], 1, True, 1.0
    _setup()
    from django.conf import settings

    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    project = _project()
    logs = Path(tempfile.mkdtemp(prefix="bench-faults-logs-"))
    print(f"broker: {broker}, database: {settings.DATABASES['default']['ENGINE']}, logs: {logs}")
    print("| broker | configuration | idle child killed: next job | then SIGTERM |"
          " child killed mid-training: its message | next job | then SIGTERM |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in args.configs:
        idle = [
            idle_scene(name, project, logs / f"{name}-idle-{i}.log") for i in range(args.rounds)
        ]
        next_jobs = ", ".join(sorted({o for o, _ in idle}))
        terms = ", ".join(sorted({t for _, t in idle}))
        if len(idle) > 1:
            stuck = sum(o.startswith("**stays") for o, _ in idle)
            next_jobs += f" ({stuck}/{len(idle)} stuck)"
        busy = (
            ("-", "-", "-")
            if args.skip_busy
            else busy_scene(name, project, logs / f"{name}-busy.log")
        )
        print(f"| {broker} | {name} | {next_jobs} | {terms} | {busy[0]} | {busy[1]} | {busy[2]} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
