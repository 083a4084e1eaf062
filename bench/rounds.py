"""Five rounds of the loop with simulated annotators: active selection and adaptive overlap
against random selection and fixed overlap.

Run: .venv/bin/python bench/rounds.py [--model-size default|small|tiny] [--rounds 5]
     .venv/bin/python bench/rounds.py --smoke   # tiny model, 2 rounds of 4 prompts (tests)

Each arm is a project in one fresh SQLite database; each round runs the loop's steps as job
rows executed in this process by the same code a worker runs (`jobs.job_execute` with the
registry's runners; no Celery, like the autopilot would chain them): generate (round size R,
chosen by the project's rule) -> simulated annotators rank (the sentiment judge of
annotation/simulation.py, with noise) -> snapshot of every round so far -> reward model (from
the base) -> promote it -> DPO from the active policy -> evaluate (reward-model judge, against
parent and base) -> promote the policy.

Arms: "active": active selection (the R prompts of a pool of `--pool` unasked prompts where the
reward model is least sure between the two best candidates; round 1 is random, there is no
reward model yet) and adaptive overlap (2 rankings, up to 4 while top choices differ).
"random": R random unasked prompts, a fixed 3 rankings a task.

Measured per round by the bench itself, on prompts no round asks about: the policy's property
rate (share of samples with positive sentiment, training/experiment.py), its win rate against
the base judged by the lexicon, and the reward model's accuracy on a fixed set of pairs the
noise-free judge ordered (base samples of held-out prompts, best against worst). The same for
both arms, so the curves compare. `--plot PATH.svg` draws both arms' curves (the app's
charts.py geometry, as a standalone SVG).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARMS = {
    # name: (active selection, rankings a task, most rankings a task)
    "active": (True, 2, 4),
    "random": (False, 3, 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-size", choices=["default", "small", "tiny"], default="default")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-size", type=int, default=24, help="prompts a round asks about")
    parser.add_argument("--pool", type=int, default=72, help="unasked prompts active scores")
    parser.add_argument("--eval-prompts", type=int, default=48)
    parser.add_argument(
        "--rm-prompts", type=int, default=48, help="held-out prompts of the fixed RM pairs"
    )
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--dpo-lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the curves here")
    parser.add_argument("--replot", type=Path, default=None, help="only draw --plot from JSON")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: runs, no result")
    args = parser.parse_args()
    if args.replot:
        _plot(json.loads(args.replot.read_text()), args.plot)
        return
    if args.smoke:
        args.model_size, args.rounds, args.round_size, args.pool = "tiny", 2, 4, 8
        args.eval_prompts = args.rm_prompts = 4
    tokens, epochs = (8, 1) if args.smoke else (24, 2)

    var = Path(tempfile.mkdtemp(prefix="bench-rounds-"))
    os.environ.update(
        VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="feedback_app.settings", SECRET_KEY="bench"
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from feedback_app.annotation.importing import parse_jsonl
    from feedback_app.annotation.models import Ranking
    from feedback_app.annotation.services import prompts_import
    from feedback_app.annotation.simulation import bots_ensure, rule_score, simulate
    from feedback_app.core.models import Job, ModelVersion, Project
    from feedback_app.finetuning import jobs, kinds, services, versions
    from feedback_app.finetuning.rounds_report import rounds_report
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig, EvalConfig, GenerateConfig
    from training.evaluate import compare_policies, preference_accuracy_reward
    from training.experiment import corpus_prompts, is_positive, on_policy_pairs, sentiment
    from training.generate import generate

    call_command("migrate", verbosity=0)
    sizes = {
        "default": BootstrapConfig,
        "small": BootstrapConfig.small,
        "tiny": BootstrapConfig.tiny,
    }
    base = bootstrap_base_model(settings.BASE_MODEL_CACHE, sizes[args.model_size]())
    total_prompts = args.round_size * (args.rounds - 1) + args.pool
    train_prompts = corpus_prompts(total_prompts, args.seed, heldout=False)
    test_prompts = corpus_prompts(args.eval_prompts, args.seed + 1, heldout=True)
    rm_prompts = corpus_prompts(args.rm_prompts, args.seed + 1, heldout=True)
    stop = ("\n\n",)

    # The fixed yardstick of reward-model accuracy: base samples of held-out prompts, best
    # against worst by the bots' judge without noise.
    sampled = generate(
        base.output_dir,
        rm_prompts,
        GenerateConfig(num_samples=4, max_new_tokens=tokens, seed=args.seed + 3, stop=stop),
    )
    rm_pairs = on_policy_pairs(rm_prompts, sampled.samples, judge=rule_score)
    eval_config = EvalConfig(
        samples_per_prompt=2, max_new_tokens=tokens, seed=args.seed + 7, stop=stop
    )

    def run(project: Project, kind: str, params: dict) -> Job:
        job = services.job_launch(project=project, kind=kind, params=params)
        jobs.job_execute(
            job_id=job.pk, worker="bench", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
        )
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            raise SystemExit(f"{kind} {job.status}: {job.error}\n{job.log_tail}")
        return job

    curves: dict[str, list[dict]] = {}
    for arm, (active, overlap, most) in ARMS.items():
        started = time.perf_counter()
        project = Project.objects.create(
            name=f"bench-{arm}",
            candidates_per_task=4,
            annotations_per_task=overlap,
            annotations_max=most,
            active_selection=active,
        )
        lines = "\n".join(json.dumps({"prompt": p}) for p in train_prompts)
        prompts_import(project=project, records=parse_jsonl(lines, k=4))
        base_version = versions.model_register(
            project=project, kind="policy", name="base", weights=base.output_dir
        )
        bots = bots_ensure(project=project, count=most or overlap, prefix=f"{arm}-bot")
        policy = base_version
        rows = []
        for number in range(1, args.rounds + 1):
            t = time.perf_counter()
            gen = run(
                project,
                "generate",
                {
                    "model_versions": [policy.pk],
                    "round_size": args.round_size,
                    "pool_size": args.pool,
                    "max_new_tokens": tokens,
                    "temperature": 1.0,
                    "top_p": 1.0,
                    "seed": args.seed + number,
                },
            )
            simulate(project=project, annotators=bots, noise=args.noise, seed=args.seed + number)
            snap = run(project, "build_dataset", {"test_fraction": 0.1})
            reward = run(
                project,
                "train_reward",
                {
                    "snapshot": snap.outputs["snapshot"],
                    "base": base_version.pk,
                    "epochs": epochs + 1,
                    "learning_rate": 1e-3,
                    "batch_size": 16,
                },
            )
            reward_version = ModelVersion.objects.get(pk=reward.outputs["model_version"])
            versions.model_promote(version=reward_version)
            dpo = run(
                project,
                "train_dpo",
                {
                    "snapshot": snap.outputs["snapshot"],
                    "policy": policy.pk,
                    "epochs": epochs,
                    "learning_rate": args.dpo_lr,
                    "batch_size": 16,
                },
            )
            new = ModelVersion.objects.get(pk=dpo.outputs["model_version"])
            run(
                project,
                "evaluate",
                {
                    "policy": new.pk,
                    "reward": reward_version.pk,
                    "prompt_limit": args.eval_prompts // 2,
                    "max_new_tokens": tokens,
                },
            )
            versions.model_promote(version=new)
            policy = new
            lexicon = compare_policies(
                policy.weights,
                base.output_dir,
                test_prompts,
                judge=lambda _p, text: sentiment(text),
                config=eval_config,
            )
            rate = sum(map(is_positive, lexicon["policy_samples"])) / lexicon["comparisons"]
            base_rate = sum(map(is_positive, lexicon["parent_samples"])) / lexicon["comparisons"]
            row = {
                "round": number,
                "selection": gen.outputs.get("selection_rule", ""),
                "rankings": Ranking.objects.filter(task__project=project).count(),
                "property_rate": rate,
                "base_property_rate": base_rate,
                "win_rate_vs_base": lexicon["win_rate"],
                "kl_to_base": lexicon["kl"],
                "rm_accuracy": preference_accuracy_reward(reward_version.weights, rm_pairs)[
                    "accuracy"
                ],
                "seconds": round(time.perf_counter() - t, 1),
            }
            rows.append(row)
            print(
                f"{arm:6s} round {number}: property rate {rate:.3f} (base {base_rate:.3f}), "
                f"win vs base {row['win_rate_vs_base']:.2f}, rankings {row['rankings']}, "
                f"RM accuracy {row['rm_accuracy']:.3f}, {row['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        curves[arm] = rows
        report = rounds_report(project=project)
        print(f"\n{arm}: the app's rounds report ({time.perf_counter() - started:.0f} s in all)")
        print("| round | rule | rankings | agreement | win vs parent (RM) | win vs base (RM) "
              "| KL to base | RM held-out acc |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
        for f in report:
            print(
                f"| {f.number} | {f.selection_rule} | {f.rankings} | {_f(f.agreement)} "
                f"| {_f(f.win_rate_vs_parent)} | {_f(f.win_rate_vs_base)} | {_f(f.kl_to_base)} "
                f"| {_f(f.reward_accuracy)} |"
            )

    print(
        "\n| arm | round | rankings (cumulative) | property rate | win rate vs base (lexicon) "
        "| KL to base | RM accuracy (fixed pairs) | s |\n|---|---|---|---|---|---|---|---|"
    )
    for arm, rows in curves.items():
        for r in rows:
            print(
                f"| {arm} | {r['round']} | {r['rankings']} | {r['property_rate']:.3f} "
                f"| {r['win_rate_vs_base']:.2f} | {r['kl_to_base']:.2f} "
                f"| {r['rm_accuracy']:.3f} | {r['seconds']:.0f} |"
            )
    print(f"\nBase property rate: {curves['random'][0]['base_property_rate']:.3f}; "
          f"{len(rm_pairs)} fixed RM pairs; model {args.model_size}, R={args.round_size}, "
          f"pool {args.pool}, {args.eval_prompts} held-out prompts x 2 samples.")  # fmt: skip
    print(_targets(curves))
    if args.json:
        args.json.write_text(json.dumps(curves, indent=1))
    if args.plot:
        _plot(curves, args.plot)
    if args.smoke:
        shutil.rmtree(var, ignore_errors=True)


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _targets(curves: dict[str, list[dict]]) -> str:
    """The issue's two targets, checked on the measured curves."""
    active, rand = curves["active"], curves["random"]
    rates = [r["property_rate"] for r in active]
    goal = rand[-1]["rm_accuracy"]
    reached = next((r for r in active if r["rm_accuracy"] >= goal), None)
    share = reached["rankings"] / rand[-1]["rankings"] if reached else None
    return (
        f"Target 1 (property rate rises, ends well above base): active {rates[0]:.3f} -> "
        f"{rates[-1]:.3f}, base {active[0]['base_property_rate']:.3f}.\n"
        f"Target 2 (active reaches random's final RM accuracy {goal:.3f} with <= 70 % of its "
        f"{rand[-1]['rankings']} rankings): "
        + (
            f"reached in round {reached['round']} with {reached['rankings']} rankings "
            f"({share:.0%})."
            if reached
            else f"not reached (active's best {max(r['rm_accuracy'] for r in active):.3f})."
        )
    )


COLOURS = {"active": "#1f6feb", "random": "#d1242f", "base": "#888888"}


def _plot(curves: dict[str, list[dict]], path: Path) -> None:
    """Both arms' curves as one SVG of three panels, drawn by the app's chart geometry
    (preferences/charts.py), with inline colours so it stands alone in docs/."""
    from feedback_app.preferences.charts import line_chart

    def series(field: str, x: str) -> list:
        return [
            (arm, arm, [(r[x], r[field], f"{arm} {r['round']}") for r in rows])
            for arm, rows in curves.items()
        ]

    base = curves["random"][0]["base_property_rate"]
    rate = series("property_rate", "round")
    rate.append(("base", "base", [(1, base, "base"), (len(curves["random"]), base, "base")]))
    panels = [
        ("Property rate (positive samples) by round", line_chart(rate, x_label="round")),
        (
            "Win rate vs base (lexicon judge) by round",
            line_chart(series("win_rate_vs_base", "round"), x_label="round", y_low=0, y_high=1),
        ),
        (
            "Reward-model accuracy (fixed pairs) by rankings spent",
            line_chart(series("rm_accuracy", "rankings"), x_label="rankings"),
        ),
    ]
    width, height = panels[0][1].width, panels[0][1].height + 28
    top = 24  # the legend's band
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height * 3 + top}" '
        f'width="{width}" height="{height * 3 + top}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for i, (name, colour) in enumerate(COLOURS.items()):
        x = 80 + i * 150
        dash = ' stroke-dasharray="4 3"' if name != "active" else ""
        parts.append(
            f'<line x1="{x}" y1="12" x2="{x + 24}" y2="12" stroke="{colour}" '
            f'stroke-width="2"{dash}/><text x="{x + 30}" y="16">{name}</text>'
        )
    for i, (title, chart) in enumerate(panels):
        parts.append(f'<g transform="translate(0 {i * height + top + 20})">')
        parts.append(f'<text x="{width / 2}" y="-6" text-anchor="middle">{title}</text>')
        for a in chart.axes:
            parts.append(f'<line x1="{a.x1}" y1="{a.y1}" x2="{a.x2}" y2="{a.y2}" stroke="#444"/>')
        for t in chart.texts:
            parts.append(f'<text x="{t.x}" y="{t.y}" text-anchor="{t.anchor}">{t.text}</text>')
        for s in chart.series:
            colour = COLOURS[s.css]
            dash = ' stroke-dasharray="4 3"' if s.css != "active" else ""
            parts.append(
                f'<polyline points="{s.polyline}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
            parts += [
                f'<circle cx="{p.x:.1f}" cy="{p.y:.1f}" r="3.5" fill="{colour}"/>' for p in s.points
            ]
        parts.append("</g>")
    parts.append("</svg>")
    path.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
