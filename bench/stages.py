"""Learning comparison of the policy stages on one simulated preference, from one parent.

    .venv/bin/python bench/stages.py           # learning test's model; 13-14 min at load 13-19
    .venv/bin/python bench/stages.py --smoke   # tiny model, one step each: runs, no figures

The preference is the DPO learning test's (tests/training/test_learning.py): the lexicon judge
of `training.experiment` (sentiment = #positive - #negative words of the Python docs; the
property: sentiment > 0). One parent, the learning test's 0.87M-parameter base model
(`BootstrapConfig.small()`), samples K completions for each training prompt once; every
method's data comes from those samples and the same judge, standing in for the annotators:
- pairs (DPO, and the reward model that GRPO and RLOO optimise): best against worst sample of a
  prompt by the judge, ties skipped (`experiment.on_policy_pairs`, as the learning test);
- demonstrations (SFT): the judge's best sample of a prompt, when it has the property (the
  annotator keeps or writes a positive answer; prompts without one give none);
- thumbs (KTO): every sample the judge has an opinion on, up when positive, down when negative
  (neutral samples get no thumb); desirable rows weighted n_down / n_up, TRL's guidance for
  unbalanced thumbs (desirable_weight * n_up / (undesirable_weight * n_down) in [1, 4/3]).
Every method starts from the parent with the same budget: `--steps` optimiser steps of
`--batch` sequences (completions for GRPO/RLOO, pairs for DPO, rows otherwise), one learning
rate for all (the learning test's DPO rate; nothing is tuned per method), each method's own
default beta. Evaluation, per method, on held-out prompts: fresh samples of child and parent
with the same seed (`evaluate.compare_policies`), the property rate of each, the child's win
rate over the parent judged by the lexicon and by the reward model, and KL(child || parent) in
nats per sample. Figures are printed, never asserted; docs/benchmarks.md has a run.

With the guards of issue 22 (`training.guards`): a reward ensemble of 3 members trained in one
call on the same pairs (bootstrap resamples) is the reward of
- grpo_guarded / rloo_guarded: the ensemble's worst case as the reward, each method's default
  beta (> 0), and the divergence detector with the product's default thresholds, on 16
  held-out prompts every steps/8 steps; a stopped run says why. Its judge, as the product's
  default (feedback_app/finetuning/judges.py): a reward model that shares no pairs with the
  reward optimised, trained the same way on the pairs of `--judge-prompts` other prompts
  (96: 27 % of all prompts, as a snapshot's held-out split of 10 % plus the 20 % evaluation
  set); `--judge seed` instead takes the single reward model above (another seed on the same
  pairs, the judge of the run recorded before that default, for comparison);
- bon_sft: best of `--samples` per training prompt by the ensemble minimum, then SFT;
- online_dpo: 2 iterations of the policy's own `--generations` samples labelled best against
  worst by the ensemble minimum, trained with the human (judge) pairs by DPO; steps split
  between the iterations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import training  # noqa: E402,F401  (offline defaults)

METHODS = (
    "sft",
    "dpo",
    "kto",
    "grpo",
    "rloo",
    "grpo_guarded",
    "rloo_guarded",
    "bon_sft",
    "online_dpo",
)
# Methods that use the reward ensemble (trained once, `training.ensemble`, 3 members).
ENSEMBLE_METHODS = ("grpo_guarded", "rloo_guarded", "bon_sft", "online_dpo")
# Rows a method needs at least (KTO's KL estimate pairs a row with another row's completion).
WRITTEN = {  # used only when sampling gave too few rows (a tiny model in --smoke): said so
    "good": " a useful and simple value that works well.",
    "bad": " an error that fails with an exception.",
}


def _cache() -> Path:
    """Where the bootstrapped models live: the tests' cache, so no bench builds its own."""
    return Path(
        os.environ.get("BASE_MODEL_CACHE")
        or os.environ.get("TRAINING_TEST_CACHE")
        or REPO / ".cache" / "test-models"
    )


def simulated_data(prompts: list[str], samples: list[list[Any]]) -> dict[str, list[dict[str, Any]]]:
    """Pairs, demonstrations, thumbs and RL prompts, all from the same samples and judge."""
    from training.experiment import on_policy_pairs
    from training.lexicon import is_positive, sentiment

    pairs = on_policy_pairs(prompts, samples)
    demos, thumbs = [], []
    for prompt, row in zip(prompts, samples, strict=True):
        texts = [s.text for s in row if s.text.strip()]
        if texts:
            best = max(texts, key=sentiment)
            if is_positive(best):
                demos.append({"prompt": prompt, "completion": best})
        for text in texts:
            if sentiment(text) != 0:
                thumbs.append({"prompt": prompt, "completion": text, "label": is_positive(text)})
    return {
        "pairs": pairs,
        "sft": demos,
        "kto": thumbs,
        "rl": [{"prompt": p} for p in prompts],
    }


def _pad_written(data: dict[str, list[dict[str, Any]]], prompts: list[str]) -> list[str]:
    """Written rows where sampling gave fewer than 2 (a tiny model); returns what was padded."""
    padded = []
    for kind in ("pairs", "sft", "kto"):
        rows = data[kind]
        labels = {r.get("label") for r in rows}
        if len(rows) >= 2 and (kind != "kto" or labels == {True, False}):
            continue
        padded.append(kind)
        for p in prompts[:2]:
            if kind == "pairs":
                rows.append({"prompt": p, "chosen": WRITTEN["good"], "rejected": WRITTEN["bad"]})
            elif kind == "sft":
                rows.append({"prompt": p, "completion": WRITTEN["good"]})
            else:
                rows.append({"prompt": p, "completion": WRITTEN["good"], "label": True})
                rows.append({"prompt": p, "completion": WRITTEN["bad"], "label": False})
    return padded


def _epochs(steps: int, sequences: int, batch: int) -> float:
    """The epochs that make `steps` optimiser steps: HF's Trainer runs
    ceil(epochs * ceil(sequences / batch)) steps."""
    return steps / math.ceil(sequences / batch)


def train_method(
    method: str,
    parent: str,
    reward_model: str,
    data: dict[str, list[dict[str, Any]]],
    out: Path,
    args: argparse.Namespace,
    ensemble: list[str] | None = None,
    judge_rows: list[dict[str, Any]] | None = None,
    judge: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Train one method from `parent` for `args.steps` steps; its output dir and metrics."""
    from training import config as cfg

    common = {
        "learning_rate": args.lr,
        "batch_size": args.batch,
        "max_length": args.max_length,
        "seed": args.seed,
        "logging_steps": 1,
    }
    if method == "sft":
        from training.sft import train_sft

        rows = data["sft"]
        config = cfg.SFTTrainConfig(epochs=_epochs(args.steps, len(rows), args.batch), **common)
        result = train_sft(parent, rows, out, config)
    elif method == "dpo":
        from training.dpo import train_dpo

        rows = data["pairs"]
        config = cfg.DPOTrainConfig(epochs=_epochs(args.steps, len(rows), args.batch), **common)
        result = train_dpo(parent, rows, out, config)
    elif method == "kto":
        from training.kto import train_kto

        rows = data["kto"]
        up = sum(r["label"] for r in rows)
        weight = min(100.0, max(1.0, (len(rows) - up) / max(up, 1)))
        config = cfg.KTOTrainConfig(
            epochs=_epochs(args.steps, len(rows), args.batch), desirable_weight=weight, **common
        )
        result = train_kto(parent, rows, out, config)
    elif method == "bon_sft":
        from training.best_of_n import train_best_of_n_sft

        rows = data["rl"]
        bon = cfg.BestOfNSFTConfig(
            n=args.samples,
            max_new_tokens=args.new_tokens,
            epochs=_epochs(args.steps, len(rows), args.batch),
            **common,
        )
        result = train_best_of_n_sft(parent, ensemble, rows, out, bon)
    elif method == "online_dpo":
        from training.online_dpo import train_online_dpo

        rows = data["rl"]
        human = data["pairs"]
        per_iteration = max(1, args.steps // 2)
        odpo = cfg.OnlineDPOConfig(
            iterations=2,
            samples=args.generations,
            max_new_tokens=args.new_tokens,
            # about human + one generated pair per prompt in each iteration
            epochs=_epochs(per_iteration, len(human) + len(rows), args.batch),
            **common,
        )
        result = train_online_dpo(parent, ensemble, rows, human, out, odpo)
    else:
        from training.online_rl import train_grpo, train_rloo

        rows = data["rl"]
        guarded = method.endswith("_guarded")
        rl = {
            "num_generations": args.generations,
            "max_completion_length": args.new_tokens,
            "epochs": _epochs(args.steps, len(rows) * args.generations, args.batch),
        }
        reward: Any = reward_model
        kwargs: dict[str, Any] = {}
        if guarded:
            rl.update(
                reward_aggregate="min",
                judge_every=max(1, args.steps // 8),
                judge_prompts=len(judge_rows or []) or 8,
            )
            reward, kwargs = ensemble, {"judge": judge or reward_model, "judge_rows": judge_rows}
        if method.startswith("grpo"):
            grpo = cfg.GRPOTrainConfig(**rl, **common)
            result = train_grpo(parent, reward, rows, out, grpo, **kwargs)
        else:
            rloo = cfg.RLOOTrainConfig(**rl, **common)
            result = train_rloo(parent, reward, rows, out, rloo, **kwargs)
    losses = [h["loss"] for h in result.history if "loss" in h]
    m = result.metrics
    info = {
        "rows": len(rows),
        "steps": m["global_step"],
        "setup_s": m["setup_seconds"],
        "train_s": m["train_seconds"],
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }
    if method == "kto":
        info["desirable_weight"] = round(weight, 2)
    if "first_reward" in m:
        info.update(first_reward=m["first_reward"], last_reward=m["last_reward"])
    if m.get("divergence"):
        d = m["divergence"]
        info["detector"] = d["reason"] or "did not fire"
        info["detector_stopped_at"] = d["stopped_at_step"]
        info["detector_curve"] = [
            {k: round(v, 3) for k, v in point.items()} for point in d["curve"]
        ]
    return result.output_dir, info


def _win(a: float, b: float) -> float:
    """A win counts 1, a tie 1/2 (as `training.evaluate`)."""
    return 1.0 if a > b else 0.5 if a == b else 0.0


def evaluate_child(
    child: str, parent: str, scorer: Any, prompts: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Property rates, win rates (lexicon and reward model) and KL of `child` against `parent`."""
    from training.config import EvalConfig
    from training.evaluate import compare_policies
    from training.lexicon import is_positive, sentiment

    config = EvalConfig(
        samples_per_prompt=args.eval_samples,
        max_new_tokens=args.new_tokens,
        seed=args.seed + 7,
        stop=("\n\n",),
    )
    out = compare_policies(child, parent, prompts, judge=lambda _p, t: sentiment(t), config=config)
    pol_rm = scorer.score_completions(out["prompts"], out["policy_samples"])
    par_rm = scorer.score_completions(out["prompts"], out["parent_samples"])
    rm_wins = [_win(a, b) for a, b in zip(pol_rm, par_rm, strict=True)]

    def rate(texts: list[str]) -> float:
        return sum(is_positive(t) for t in texts) / len(texts)

    return {
        "parent_rate": rate(out["parent_samples"]),
        "child_rate": rate(out["policy_samples"]),
        "win_judge": out["win_rate"],
        "win_judge_low": out["win_rate_low"],
        "win_judge_high": out["win_rate_high"],
        "win_rm": sum(rm_wins) / len(rm_wins),
        "kl": out["kl"],
        "child_mean_sentiment": out["policy_mean_score"],
        "parent_mean_sentiment": out["parent_mean_score"],
        "comparisons": out["comparisons"],
        "child_examples": out["policy_samples"][:2],
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| method | rows | steps | property rate parent -> child | win rate (lexicon) [95 % CI] "
        "| win rate (reward model) | KL nats | train s | loss or reward first -> last "
        "| detector |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | failed: {r['error']} |||||||")
            continue
        if r.get("first_reward") is not None:
            trend = f"reward {r['first_reward']:.2f} -> {r['last_reward']:.2f}"
        elif r.get("first_loss") is not None:
            trend = f"loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}"
        else:
            trend = ""
        kl = "n/a" if r["kl"] is None else f"{r['kl']:.2f}"
        lines.append(
            f"| {r['method']} | {r['rows']} | {r['steps']} "
            f"| {r['parent_rate']:.1%} -> {r['child_rate']:.1%} | {r['win_judge']:.2f} "
            f"[{r['win_judge_low']:.2f}, {r['win_judge_high']:.2f}] "
            f"| {r['win_rm']:.2f} | {kl} | {r['setup_s'] + r['train_s']:.1f} | {trend} "
            f"| {r.get('detector', '')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--model", help="parent model dir (default: the learning test's small)")
    parser.add_argument("--work", default=str(REPO / ".cache" / "bench-stages"))
    parser.add_argument("--train-prompts", type=int, default=256)
    parser.add_argument("--test-prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8, help="K samples per training prompt")
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--steps", type=int, default=64, help="optimiser steps, every method")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--generations", type=int, default=4, help="GRPO/RLOO group size")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=4, help="per held-out prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--judge", choices=("held-out", "seed"), default="held-out",
        help="the guarded runs' detector judge: a reward model on other prompts' pairs "
        "(the product's default) or the single reward model (same pairs, another seed)",
    )  # fmt: skip
    parser.add_argument("--judge-prompts", type=int, default=96, help="the held-out judge's")
    parser.add_argument("--smoke", action="store_true", help="tiny model, tiny sizes: runs only")
    args = parser.parse_args()
    if args.smoke:
        args.train_prompts, args.test_prompts, args.samples, args.new_tokens = 8, 2, 4, 8
        args.judge_prompts = 4
        args.steps, args.batch, args.generations, args.eval_samples = 1, 4, 2, 1

    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig, GenerateConfig, RewardTrainConfig
    from training.env import limit_threads
    from training.evaluate import preference_accuracy_reward
    from training.experiment import corpus_prompts, on_policy_pairs
    from training.generate import generate
    from training.reward import RewardScorer, train_reward

    limit_threads(args.threads)
    clock = time.perf_counter()
    work = Path(args.work) / ("smoke" if args.smoke else "run")
    work.mkdir(parents=True, exist_ok=True)
    size = BootstrapConfig.tiny() if args.smoke else BootstrapConfig.small()
    parent = args.model or bootstrap_base_model(_cache(), size).output_dir
    print(f"parent {parent}; load {os.getloadavg()}; {json.dumps(vars(args))}", flush=True)

    sample = GenerateConfig(
        num_samples=args.samples, max_new_tokens=args.new_tokens, seed=args.seed, stop=("\n\n",)
    )
    train_prompts = corpus_prompts(args.train_prompts, args.seed, heldout=False)
    test_prompts = corpus_prompts(args.test_prompts, args.seed + 1, heldout=True)
    data = simulated_data(train_prompts, generate(parent, train_prompts, sample).samples)
    padded = _pad_written(data, train_prompts)
    test_pairs = on_policy_pairs(
        test_prompts, generate(parent, test_prompts, sample.replace(num_samples=2)).samples
    )
    counts = {k: len(v) for k, v in data.items()}
    ups = sum(r["label"] for r in data["kto"])
    print(f"rows {counts}; thumbs up {ups}; written rows added to {padded or 'none'}", flush=True)
    data_s = time.perf_counter() - clock

    clock = time.perf_counter()
    rm_config = RewardTrainConfig(
        learning_rate=1e-3,
        epochs=1 if args.smoke else 3,
        batch_size=args.batch,
        max_length=args.max_length,
    )
    reward_model = train_reward(parent, data["pairs"], work / "reward", rm_config).output_dir
    rm_acc = preference_accuracy_reward(reward_model, test_pairs) if test_pairs else None
    scorer = RewardScorer(reward_model)
    rm_s = time.perf_counter() - clock
    print(
        f"data {data_s:.1f} s; reward model {rm_s:.1f} s, held-out accuracy "
        f"{rm_acc['accuracy'] if rm_acc else 'n/a'} on {len(test_pairs)} pairs",
        flush=True,
    )

    methods = [m for m in args.methods.split(",") if m]
    ensemble = None
    if any(m in ENSEMBLE_METHODS for m in methods):
        from training.config import RewardEnsembleConfig
        from training.ensemble import train_reward_ensemble

        clock = time.perf_counter()
        ens_config = RewardEnsembleConfig(members=3, **rm_config.to_dict())
        ens = train_reward_ensemble(parent, data["pairs"], work / "ensemble", ens_config)
        ensemble = ens.metrics["members"]
        print(f"reward ensemble of 3: {time.perf_counter() - clock:.1f} s", flush=True)
    judge_rows = [{"prompt": p} for p in test_prompts[:16]]
    judge, judge_info = None, None
    if args.judge == "held-out" and any(m.endswith("_guarded") for m in methods):
        # Pairs of prompts the reward optimised never saw (sampled last, so the data above is
        # the same with or without it): the product's default judge (finetuning/judges.py).
        clock = time.perf_counter()
        seen = set(train_prompts) | set(test_prompts)
        judge_prompts = [
            p for p in corpus_prompts(args.judge_prompts, args.seed + 2, heldout=False)
            if p not in seen
        ]  # fmt: skip
        judge_pairs = on_policy_pairs(
            judge_prompts, generate(parent, judge_prompts, sample).samples
        )
        if len(judge_pairs) < 2:  # a tiny model in --smoke: said so
            judge_pairs += [
                {"prompt": p, "chosen": WRITTEN["good"], "rejected": WRITTEN["bad"]}
                for p in judge_prompts[:2]
            ]
        judge = train_reward(parent, judge_pairs, work / "judge", rm_config).output_dir
        acc = preference_accuracy_reward(judge, test_pairs) if test_pairs else None
        judge_info = {
            "prompts": len(judge_prompts),
            "pairs": len(judge_pairs),
            "heldout_accuracy": acc["accuracy"] if acc else None,
            "seconds": round(time.perf_counter() - clock, 1),
        }
        print(f"held-out judge: {json.dumps(judge_info)}", flush=True)

    rows = []
    for method in methods:
        started = time.perf_counter()
        try:
            out = work / method
            child, info = train_method(
                method, parent, reward_model, data, out, args, ensemble, judge_rows, judge
            )
            info.update(evaluate_child(child, parent, scorer, test_prompts, args))
        except Exception as exc:  # a failing method is a row of the table, not the end of it
            info = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        info.update(method=method, wall_s=time.perf_counter() - started)
        info["load_1min"] = os.getloadavg()[0]
        rows.append(info)
        print(json.dumps(info, default=str), flush=True)

    print(f"\n## Stages on one simulated preference\n\n{_table(rows)}")
    print(f"\nload after: {os.getloadavg()}")
    summary = {
        "args": vars(args), "rows": counts, "reward_model_accuracy": rm_acc, "judge": judge_info,
    }  # fmt: skip
    (work / "results.json").write_text(json.dumps({**summary, "methods": rows}, indent=2))
    failed = [r for r in rows if "error" in r]
    if failed:
        raise SystemExit(f"{len(failed)} method(s) failed: {failed[0]['error']}")


if __name__ == "__main__":
    main()
