"""Rounds of the loop, driven by the autopilot at the product's default settings, with simulated
annotators: active selection and adaptive overlap against random selection and fixed overlap.

Run: .venv/bin/python bench/rounds.py [--model-size default|small|tiny] [--rounds 5] [--plot P.svg]
     .venv/bin/python bench/rounds.py --arms random --json r.json   # one arm (run arms apart)
     .venv/bin/python bench/rounds.py --replot a.json r.json --plot P.svg  # tables and plot
     .venv/bin/python bench/rounds.py --smoke   # tiny model, 2 rounds of 4 prompts (tests)

The issue-21 setting by default: the shipped demo model, five rounds of 64 prompts (K = 4
candidates), the autopilot with nothing set but `enabled` and the round's size (its trigger,
stage, gate, human margin, failed-gate pause and every step's parameters are the product's
defaults). Each arm is a project in one fresh SQLite database. Round 1 is one generate job by
hand (the autopilot trains on rounds; it does not start the first); then each round: simulated
annotators (annotation/simulation.py's documented rule, noise 0.1; a text the rule cannot tell
from another ties, as a person who sees no difference would say) rank the open round ->
`autopilot_advance` starts a step -> the bench runs its job here by the worker's own code
(`jobs.job_execute` with the registry's runners; no Celery) -> advance again, until the run is
done. The bench promotes nothing itself. If the autopilot pauses itself (failed gates in a row),
the bench resumes it, as an admin would, and the row says so. After the last round, the round
it generated is ranked and the autopilot advanced once more, so the people's verdict on the last
promotion is read too.

Arms: "active": active selection (a round's non-evaluation-set prompts chosen among `--pool`
unasked ones where the active reward model is least sure; random until there is one) and
adaptive overlap (2 rankings, up to 4 while top choices differ). "random": random prompts, a
fixed 3 rankings a task (the product's default overlap).

Measured by the bench, on prompts no round asks about (held-out documentation), never seen by
the product: the independent measure of what the annotators prefer, the active policy's
*property rate* (share of samples the noise-free rule scores above 0) with its 95 % Wilson
interval, its KL to the base; each run's reward model's accuracy on a fixed yardstick of
random pairs (base samples of held-out prompts: per prompt, a random pair the noise-free rule
orders) with its interval; the gate's decision, whether it promoted, and the people's verdict
on the promotion (the head-to-head round after it: confirmed / rolled back / unclear).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-size", type=int, default=64, help="prompts a round asks about")
    parser.add_argument("--pool", type=int, default=192, help="unasked prompts active scores")
    parser.add_argument("--heldout-prompts", type=int, default=128, help="property rate's")
    parser.add_argument("--samples", type=int, default=2, help="samples a held-out prompt")
    parser.add_argument(
        "--yardstick-prompts", type=int, default=480, help="held-out prompts of the RM yardstick"
    )
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tie-break", action="store_true", help="bots never tie (hash order)")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the curves here")
    parser.add_argument(
        "--replot", type=Path, nargs="+", default=None, help="only tables and --plot from JSON"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: runs, no result")
    args = parser.parse_args()
    if args.replot:
        result: dict = {"arms": {}, "meta": {}}
        for path in args.replot:
            part = json.loads(path.read_text())
            result["arms"].update(part["arms"])
            result["meta"] = part["meta"]
        _tables(result)
        if args.plot:
            _plot(result, args.plot)
        return
    if args.smoke:
        args.model_size, args.rounds, args.round_size, args.pool = "tiny", 2, 4, 8
        args.heldout_prompts, args.yardstick_prompts = 4, 8
    result = _run(args)
    _tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.plot:
        _plot(result, args.plot)


def _run(args: argparse.Namespace) -> dict:
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
    from feedback_app.finetuning import autopilot, jobs, kinds, services, versions
    from feedback_app.finetuning.models import AutopilotRun, AutopilotStep
    from feedback_app.finetuning.rounds_report import rounds_report
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig, EvalConfig, GenerateConfig
    from training.evaluate import compare_policies, preference_accuracy_reward
    from training.experiment import corpus_prompts
    from training.generate import generate
    from training.stats import wilson_interval

    call_command("migrate", verbosity=0)
    sizes = {
        "default": BootstrapConfig,
        "small": BootstrapConfig.small,
        "tiny": BootstrapConfig.tiny,
    }
    base = bootstrap_base_model(settings.BASE_MODEL_CACHE, sizes[args.model_size]())
    # Every round's prompts, the pool active selection scores, one round more (the last run
    # generates it), and the evaluation set's fifth beside them.
    total_prompts = int((args.round_size * (args.rounds + 1) + args.pool) * 1.3)
    train_prompts = list(dict.fromkeys(corpus_prompts(total_prompts, args.seed, heldout=False)))
    heldout = corpus_prompts(args.heldout_prompts, args.seed + 1, heldout=True)
    yard_prompts = corpus_prompts(args.yardstick_prompts, args.seed + 2, heldout=True)
    # The generate step's own sampling (the product's defaults): the measures sample alike.
    sampling = GenerateConfig()
    tokens = 8 if args.smoke else sampling.max_new_tokens

    # The fixed yardstick: base samples of held-out prompts; per prompt a random pair of two
    # samples the noise-free rule orders (prompts whose samples all tie give none). Cached by
    # its inputs: arms run apart build the same one.
    key = f"{Path(base.output_dir).name}-{args.seed}-{tokens}-{len(yard_prompts)}"
    cache = ROOT / ".cache" / f"rounds-yardstick-{key}.json"
    if cache.exists():
        yardstick = json.loads(cache.read_text())
    else:
        sampled = generate(
            base.output_dir,
            yard_prompts,
            GenerateConfig(num_samples=4, max_new_tokens=tokens, seed=args.seed + 3),
        )
        rng = random.Random(args.seed + 4)
        yardstick = []
        for prompt, row in zip(yard_prompts, sampled.samples, strict=True):
            pairs = [(a.text, b.text) for i, a in enumerate(row) for b in row[i + 1 :]]
            pairs = [(a, b) for a, b in pairs if rule_score(a) != rule_score(b)]
            if pairs:
                a, b = rng.choice(pairs)
                good, bad = (a, b) if rule_score(a) > rule_score(b) else (b, a)
                yardstick.append({"prompt": prompt, "chosen": good, "rejected": bad})
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(json.dumps(yardstick))
    eval_config = EvalConfig(
        samples_per_prompt=args.samples, max_new_tokens=tokens, seed=args.seed + 7
    )

    def execute(job: Job) -> Job:
        """Run a queued job here, by the worker's own code (no Celery)."""
        jobs.job_execute(
            job_id=job.pk, worker="bench", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
        )
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            raise SystemExit(f"{job.kind} {job.status}: {job.error}\n{job.log_tail}")
        return job

    def measure(policy: ModelVersion) -> dict:
        """The independent measure: the noise-free rule on the policy's held-out samples."""
        out = compare_policies(
            policy.weights,
            base.output_dir,
            heldout,
            judge=lambda _p, text: rule_score(text),
            config=eval_config,
        )
        n = out["comparisons"]
        hits = sum(rule_score(s) > 0 for s in out["policy_samples"])
        base_hits = sum(rule_score(s) > 0 for s in out["parent_samples"])
        words = [len(s.split()) for s in out["policy_samples"]]
        return {
            "property_rate": hits / n,
            "property_interval": list(wilson_interval(hits, n)),
            "base_property_rate": base_hits / n,
            "mean_rule_score": sum(rule_score(s) for s in out["policy_samples"]) / n,
            "mean_words": sum(words) / n,
            "win_rate_vs_base": out["win_rate"],
            "kl_to_base": out["kl"],
            "samples": n,
        }

    generation = {"round_size": args.round_size, "pool_size": args.pool}
    if args.smoke:
        generation["max_new_tokens"] = tokens
    # The product's defaults: only switched on and told the round's size (and, in the smoke
    # run, short texts). Everything else (trigger, stage, gate, steps) is the Autopilot row's.
    settings_ = {"enabled": True, "step_params": {"generate": generation}}
    if args.smoke:
        settings_["step_params"]["evaluate"] = {"max_new_tokens": tokens, "prompt_limit": 4}

    arms: dict[str, dict] = {}
    for arm in args.arms:
        active, overlap, most = ARMS[arm]
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
        first = services.job_launch(
            project=project,
            kind="generate",
            params={"model_versions": [base_version.pk], **generation, "seed": args.seed + 1},
        )
        execute(first)
        pilot = autopilot.autopilot_update(project=project, data=settings_)
        config = {k: v for k, v in autopilot.settings_dict(pilot).items() if k != "step_params"}
        rows: list[dict] = []
        measured: dict[int, dict] = {}  # per policy (deterministic given the seed)

        def rank(number: int, project: Project = project, bots: list = bots) -> None:
            simulate(
                project=project,
                annotators=bots,
                noise=args.noise,
                seed=args.seed + number,
                tie_break=args.tie_break,
            )

        for number in range(1, args.rounds + 1):
            t = time.perf_counter()
            rank(number)
            rankings = Ranking.objects.filter(task__project=project).count()
            resumed = False
            while True:
                state = autopilot.autopilot_advance(project_id=project.pk)
                run = AutopilotRun.objects.filter(project=project).order_by("-number").first()
                if state == "done":
                    break
                if state == "paused" and not resumed:  # failed gates in a row: as an admin
                    autopilot.autopilot_update(project=project, data={"paused": False})
                    resumed = True
                    continue
                if not state.startswith("started:"):
                    reason = run.stop_reason if run else ""
                    raise SystemExit(f"{arm} round {number}: autopilot {state} {reason}")
                step = AutopilotStep.objects.select_related("job").get(run=run, name=run.step)
                execute(step.job)
            policy = ModelVersion.objects.get(project=project, kind="policy", is_active=True)
            if policy.pk not in measured:
                measured[policy.pk] = measure(policy)
            # The policy this run trained, promoted or not: does training learn at all?
            trained = ModelVersion.objects.get(pk=run.policy_id)
            if trained.pk not in measured:
                measured[trained.pk] = measure(trained)
            reward = ModelVersion.objects.get(pk=run.reward_id)
            acc = preference_accuracy_reward(reward.weights, yardstick)["accuracy"]
            gate = run.gate
            row = {
                "round": number,
                "run": run.number,
                "rankings": rankings,
                **measured[policy.pk],
                "trained_property_rate": measured[trained.pk]["property_rate"],
                "trained_property_interval": measured[trained.pk]["property_interval"],
                "trained_kl_to_base": measured[trained.pk]["kl_to_base"],
                "rm_accuracy": acc,
                "rm_interval": list(wilson_interval(acc * len(yardstick), len(yardstick))),
                "gate": gate["reason"],
                "gate_inputs": gate["inputs"],
                "promoted": run.promoted,
                "policy": policy.name,
                "resumed": resumed,
                "outlook": run.config.get("gate_outlook", {}).get("text", ""),
                "seconds": round(time.perf_counter() - t, 1),
            }
            rows.append(row)
            if args.json:  # what finished so far, if the run is cut short
                partial = args.json.with_suffix(".partial.json")
                partial.write_text(json.dumps({arm: rows}, indent=1))
            print(
                f"{arm:6s} round {number}: property rate {row['property_rate']:.3f} "
                f"(base {row['base_property_rate']:.3f}), KL to base {_f(row['kl_to_base'])}, "
                f"rankings {rankings}, RM yardstick {acc:.3f}, gate {gate['reason']}, "
                f"{'promoted' if run.promoted else 'not promoted'}, {row['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        # The people's verdict on the last run's promotion: rank the round it generated and
        # let the autopilot start its next run (which reads the verdict first).
        rank(args.rounds + 1)
        autopilot.autopilot_advance(project_id=project.pk)
        for row in rows:
            run = AutopilotRun.objects.get(project=project, number=row["run"])
            row["human"] = run.human or {}
        final = ModelVersion.objects.get(project=project, kind="policy", is_active=True)
        if final.pk not in measured:
            measured[final.pk] = measure(final)
        arms[arm] = {
            "rows": rows,
            "final_policy": final.name,
            "final": measured[final.pk],
            # Promotions the people rejected whose policy is still the active one (should be none).
            "rolled_back_active": [
                r["run"] for r in rows if r["human"].get("verdict") == "rolled back"
                and AutopilotRun.objects.get(project=project, number=r["run"]).policy_id == final.pk
            ],
            "seconds": round(time.perf_counter() - started, 1),
            "report": [
                {
                    "round": f.number, "rule": f.selection_rule, "rankings": f.rankings,
                    "agreement": f.agreement, "win_vs_parent": f.win_rate_vs_parent,
                    "kl_to_base": f.kl_to_base,
                }
                for f in rounds_report(project=project)
            ],
        }  # fmt: skip
    if args.smoke:
        shutil.rmtree(var, ignore_errors=True)
    return {
        "arms": arms,
        "meta": {
            "model": args.model_size,
            "round_size": args.round_size,
            "pool": args.pool,
            "heldout_prompts": args.heldout_prompts,
            "samples": args.samples,
            "yardstick_pairs": len(yardstick),
            "noise": args.noise,
            "tie_break": args.tie_break,
            "autopilot": config,
            "generation": generation,
        },
    }


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(value: float, interval: list[float]) -> str:
    return f"{value:.3f} ({interval[0]:.3f}-{interval[1]:.3f})"


def _human(row: dict) -> str:
    h = row.get("human") or {}
    if not row["promoted"]:
        return "–"
    if h.get("win_rate") is None:
        return h.get("verdict", "pending")
    return (
        f"{h['verdict']}: {h['win_rate']:.2f} ({h['low']:.2f}-{h['high']:.2f}, "
        f"{h['rankings']} rankings)"
    )


def _tables(result: dict) -> None:
    """The per-round table of each arm, and the issue's targets checked on it."""
    meta, arms = result["meta"], result["arms"]
    print(
        f"Model {meta['model']}, R = {meta['round_size']}, pool {meta['pool']}, property rate "
        f"on {meta['heldout_prompts']} held-out prompts x {meta['samples']} samples, "
        f"{meta['yardstick_pairs']} yardstick pairs; autopilot (the product's defaults): "
        f"{json.dumps(meta['autopilot'])}"
    )
    print(
        "\n| arm | round | rankings (cumulative) | property rate (95 % interval) | mean words "
        "| KL to base | RM yardstick accuracy (95 %) | gate | promoted | human verdict "
        "| trained policy's property rate, KL to base | s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for arm, data in arms.items():
        for r in data["rows"]:
            print(
                f"| {arm} | {r['round']} | {r['rankings']} "
                f"| {_ci(r['property_rate'], r['property_interval'])} | {r['mean_words']:.1f} "
                f"| {_f(r['kl_to_base'])} | {_ci(r['rm_accuracy'], r['rm_interval'])} "
                f"| {r['gate']}{' (resumed)' if r['resumed'] else ''} "
                f"| {'yes' if r['promoted'] else 'no'} | {_human(r)} "
                f"| {_ci(r['trained_property_rate'], r['trained_property_interval'])}, "
                f"{_f(r['trained_kl_to_base'])} | {r['seconds']:.0f} |"
            )
    print(
        "\n| arm | round | selection rule (rounds report) | rankings | agreement |\n"
        "|---|---|---|---|---|"
    )
    for arm, data in arms.items():
        for f in data["report"]:
            print(
                f"| {arm} | {f['round']} | {f['rule']} | {f['rankings']} | {_f(f['agreement'])} |"
            )
    print(_targets(result))


def _targets(result: dict) -> str:
    """The issue's three targets, checked on the measured curves."""
    arms = result["arms"]
    lines = []
    for arm, data in arms.items():
        rows = data["rows"]
        base = rows[0]["base_property_rate"]
        rates = [base] + [r["property_rate"] for r in rows]
        rises = sum(b > a for a, b in zip(rates, rates[1:], strict=False))
        end = data["final"]["property_rate"]
        lines.append(
            f"Target 1 ({arm}: property rate rises in >= 4 of {len(rows)} rounds, ends >= 2.5x "
            f"base): base {base:.3f}, rounds {', '.join(f'{r:.3f}' for r in rates[1:])}; rose in "
            f"{rises}; ends {end:.3f} = {end / base if base else float('inf'):.2f}x base "
            f"(policy {data['final_policy']})."
        )
        verdicts = [r["human"].get("verdict") for r in rows if r["promoted"]]
        lines.append(
            f"Target 2 ({arm}: no promotion the people reject stays active): verdicts on "
            f"{len(verdicts)} promotions: {verdicts}; rejected promotions still active: "
            f"{data['rolled_back_active'] or 'none'}."
        )
    if "active" in arms and "random" in arms:
        act, rand = arms["active"]["rows"], arms["random"]["rows"]
        goal, spent = rand[-1]["rm_accuracy"], rand[-1]["rankings"]
        reached = next((r for r in act if r["rm_accuracy"] >= goal), None)
        lines.append(
            f"Target 3 (active reaches random's final RM accuracy {goal:.3f} "
            f"({rand[-1]['rm_interval'][0]:.3f}-{rand[-1]['rm_interval'][1]:.3f}) with <= 70 % "
            f"of its {spent} rankings): "
            + (
                f"reached in round {reached['round']} with {reached['rankings']} rankings "
                f"({reached['rankings'] / spent:.0%}); {reached['rm_accuracy']:.3f} "
                f"({reached['rm_interval'][0]:.3f}-{reached['rm_interval'][1]:.3f})."
                if reached
                else f"not reached (active's best {max(r['rm_accuracy'] for r in act):.3f})."
            )
        )
    return "\n".join(lines)


COLOURS = {"active": "#1f6feb", "random": "#d1242f", "base": "#888888"}
HELD = " (gate failed, not promoted)"


def _held(row: dict) -> str:
    return HELD if row.get("promoted") is False else ""


def _plot(result: dict, path: Path) -> None:
    """The arms' curves as one SVG of three panels, drawn by the app's chart geometry
    (preferences/charts.py), with inline colours so it stands alone in docs/; a bar is a 95 %
    interval, a hollow point a round whose policy the gate did not promote."""
    from feedback_app.preferences.charts import line_chart

    arms = result["arms"]

    def series(value: str, interval: str | None, x: str) -> list:
        out = []
        for arm, data in arms.items():
            rows = data["rows"]
            out.append(
                (arm, arm, [(r[x], r[value], f"{arm} {r['round']}{_held(r)}") for r in rows])
            )
            if interval:  # the bounds: points only, joined by bars below
                for i, name in ((0, "low"), (1, "high")):
                    out.append((name, arm, [(r[x], r[interval][i], name) for r in rows]))
        return out

    first = next(iter(arms.values()))["rows"]
    base = first[0]["base_property_rate"]
    rate = series("property_rate", "property_interval", "round")
    rate.append(("base", "base", [(1, base, "base"), (len(first), base, "base")]))
    pairs = result["meta"]["yardstick_pairs"]
    kl = series("kl_to_base", None, "round")
    panels = [
        ("Property rate (held-out prompts) by round", line_chart(rate, x_label="round", y_low=0)),
        ("KL to the base by round", line_chart(kl, x_label="round", y_low=0)),
        (
            f"Reward-model accuracy ({pairs} yardstick pairs) by rankings",
            line_chart(series("rm_accuracy", "rm_interval", "rankings"), x_label="rankings"),
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
        x = 60 + i * 120
        dash = ' stroke-dasharray="4 3"' if name != "active" else ""
        parts.append(
            f'<line x1="{x}" y1="12" x2="{x + 24}" y2="12" stroke="{colour}" '
            f'stroke-width="2"{dash}/><text x="{x + 30}" y="16">{name}</text>'
        )
    parts.append(
        '<circle cx="432" cy="12" r="3.5" fill="white" stroke="#444" stroke-width="1.5"/>'
        '<text x="440" y="16">gate failed, not promoted</text>'
    )
    for i, (title, chart) in enumerate(panels):
        parts.append(f'<g transform="translate(0 {i * height + top + 20})">')
        parts.append(f'<text x="{width / 2}" y="-6" text-anchor="middle">{title}</text>')
        for a in chart.axes:
            parts.append(f'<line x1="{a.x1}" y1="{a.y1}" x2="{a.x2}" y2="{a.y2}" stroke="#444"/>')
        for t in chart.texts:
            parts.append(f'<text x="{t.x}" y="{t.y}" text-anchor="{t.anchor}">{t.text}</text>')
        bounds: dict[str, list] = {}
        for s in chart.series:
            colour = COLOURS[s.css]
            if s.name in ("low", "high"):
                bounds.setdefault(s.css, []).append(s.points)
                continue
            dash = ' stroke-dasharray="4 3"' if s.css != "active" else ""
            parts.append(
                f'<polyline points="{s.polyline}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
            for p in s.points:  # hollow: the gate held that round's policy back
                fill = "white" if p.title.endswith(HELD) else colour
                parts.append(
                    f'<circle cx="{p.x:.1f}" cy="{p.y:.1f}" r="3.5" fill="{fill}" '
                    f'stroke="{colour}" stroke-width="1.5"><title>{p.title}</title></circle>'
                )
        for css, (lows, highs) in bounds.items():  # the 95 % intervals as bars
            for lo, hi in zip(lows, highs, strict=True):
                parts.append(
                    f'<line x1="{lo.x:.1f}" y1="{lo.y:.1f}" x2="{hi.x:.1f}" y2="{hi.y:.1f}" '
                    f'stroke="{COLOURS[css]}" stroke-opacity="0.5" stroke-width="1"/>'
                )
        parts.append("</g>")
    parts.append("</svg>")
    path.write_text("\n".join(parts))


if __name__ == "__main__":
    main()
