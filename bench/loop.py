"""Wall time of each stage of one turn of the loop on the demo model, through a real worker.

Run: .venv/bin/python bench/loop.py [--model-size default|small|tiny] [--prompts 24]
     .venv/bin/python bench/loop.py --smoke   # tiny model, 4 prompts, short jobs (tests)

A fresh SQLite database and filesystem broker in a temporary folder (the embedded default of
`make run`), one real `celery worker` process, and the demo's offline base model (built or taken
from the cache). Each stage is launched as a job the way the loop page launches it; the table
shows launch-to-done wall time and the job's own run time (the difference is queue pick-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-size", choices=["default", "small", "tiny"], default="default")
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--bots", type=int, default=3)
    parser.add_argument(
        "--smoke", action="store_true", help="every stage at a tiny size: runs, no speed"
    )
    args = parser.parse_args()
    if args.smoke:
        args.model_size, args.prompts, args.bots = "tiny", 4, 2
    tokens, epochs, eval_prompts = (8, 1, 4) if args.smoke else (40, 2, 16)

    var = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    os.environ.update(
        VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="feedback_app.settings", SECRET_KEY="bench"
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from feedback_app.annotation import demo
    from feedback_app.annotation.importing import parse_jsonl
    from feedback_app.annotation.services import prompts_import
    from feedback_app.annotation.simulation import simulate
    from feedback_app.core.models import Job, Membership, Project
    from feedback_app.finetuning import services, versions
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig

    call_command("migrate", verbosity=0)
    sizes = {
        "default": BootstrapConfig,
        "small": BootstrapConfig.small,
        "tiny": BootstrapConfig.tiny,
    }
    t0 = time.perf_counter()
    base = bootstrap_base_model(settings.BASE_MODEL_CACHE, sizes[args.model_size]())
    rows: list[tuple[str, float, float | None, str]] = [
        (
            "bootstrap base model" + (" (cached)" if base.cached else ""),
            time.perf_counter() - t0,
            None,
            "",
        )
    ]

    project = Project.objects.create(
        name="bench", candidates_per_task=4, annotations_per_task=args.bots
    )
    records = parse_jsonl(demo.LOOP_FILE.read_bytes(), k=4)[: args.prompts]
    prompts_import(project=project, records=records)
    versions.model_register(project=project, kind="policy", name="base", weights=base.output_dir)
    users = get_user_model().objects
    bots = [users.create(username=f"bot-{i}") for i in range(args.bots)]
    for bot in bots:
        Membership.objects.create(project=project, user=bot)

    log = (var / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "feedback_app", "worker", "-Q",
         "default,generation,training", "-c", "1", "--without-mingle", "--without-gossip",
         "--loglevel", "INFO"],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        while "ready." not in (var / "worker.log").read_text():
            time.sleep(0.2)

        def stage(label: str, kind: str, params: dict) -> Job:
            start = time.perf_counter()
            job = services.job_launch(project=project, kind=kind, params=params)
            while job.status in Job.ACTIVE:
                time.sleep(0.1)
                job.refresh_from_db()
            wall = time.perf_counter() - start
            if job.status != "succeeded":
                raise SystemExit(f"{label} {job.status}: {job.error}\n{job.log_tail}")
            run = (job.finished_at - job.started_at).total_seconds()
            rows.append((label, wall, run, _summary(job)))
            print(f"{label:32s} {wall:7.1f} s", file=sys.stderr)
            return job

        gen = {"max_new_tokens": tokens, "temperature": 0.9, "top_p": 0.95, "seed": 0}
        stage(f"generate round 1 ({len(records)} prompts x 4)", "generate", gen)
        t = time.perf_counter()
        n = simulate(project=project, annotators=bots, noise=0.1).submitted
        rows.append(
            (
                f"{args.bots} simulated annotators rank",
                time.perf_counter() - t,
                None,
                f"{n} rankings",
            )
        )
        stage("build snapshot", "build_dataset", {"test_fraction": 0.2})
        stage("train reward model", "train_reward", {"epochs": epochs})
        dpo = stage("train DPO", "train_dpo", {"epochs": epochs, "learning_rate": 5e-5})
        policy = dpo.outputs["model_version"]
        stage("evaluate vs parent", "evaluate", {"policy": policy, "prompt_limit": eval_prompts})
        stage("promote", "promote", {"model_version": policy})
        stage("generate round 2", "generate", gen)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    print("\n| stage | wall s (launch to done) | job run s | notes |\n|---|---|---|---|")
    for label, wall, run, note in rows:
        print(f"| {label} | {wall:.1f} | {'' if run is None else f'{run:.1f}'} | {note} |")
    total = sum(w for _, w, _, _ in rows[1:])
    print(
        f"\nOne turn after the base model: {total:.0f} s. "
        f"Model size: {args.model_size}. Data in {var}"
    )
    if args.smoke:
        shutil.rmtree(var, ignore_errors=True)


def _summary(job) -> str:
    out = job.outputs
    if job.kind == "generate":
        return f"{out['tasks']} tasks, {out['completion_tokens']} tokens"
    if job.kind == "build_dataset":
        return f"{out['train']} train / {out['test']} test pairs"
    if job.kind in ("train_reward", "train_dpo"):
        m = out["metrics"]
        acc = m.get("heldout_accuracy")
        return f"held-out accuracy {acc:.2f}" if acc is not None else ""
    if job.kind == "evaluate":
        return f"win rate {out['win_rate']:.2f}, KL {out['kl_to_parent']:.3f}"
    return ""


if __name__ == "__main__":
    main()
