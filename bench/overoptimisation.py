"""Over-optimisation in small: best-of-n and GRPO against one proxy reward model and an ensemble.

    .venv/bin/python bench/overoptimisation.py           # the learning test's model; minutes
    .venv/bin/python bench/overoptimisation.py --smoke   # tiny model, tiny sizes: runs only

Gao et al. (2023) in small. The gold judge is the lexicon (`training.lexicon.sentiment`), the
simulated annotators' rule. Proxy reward models learn it from few, noisy labels: the parent
(`BootstrapConfig.small()`) samples K completions per training prompt, best against worst by
the lexicon makes a pair, and a share `--noise` of the pairs is flipped (Coste et al. 2024 use
25 % label noise). One proxy is trained on all pairs; an ensemble of `--members` is trained in
one call (`training.ensemble`, bootstrap resamples, one seed each). Then, on held-out prompts:
- best-of-n: `--bon-samples` samples per prompt from the parent, for n = 1, 2, 4, ... the
  expected gold and proxy score of the sample the selector ranks best (the unbiased estimator
  over all n-subsets of the samples), at KL = log n - (n - 1) / n nats;
- GRPO: runs against the proxy and against the ensemble minimum (and the proxy without a KL
  term, beta 0), the divergence detector in record-only mode with the lexicon as its judge:
  every `--judge-every` steps fresh samples give the gold, the optimised reward and KL to the
  parent (nats per sample).
Gold and proxy are plotted against sqrt(KL) (`--plot`, PNG and SVG). The cost of the ensemble
(K members in one call against K separate `train_reward` runs and against the floor, K times
one member's training) is measured too; `--cost-only` measures it alone. Figures are printed,
never asserted; docs/benchmarks.md has a run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import training  # noqa: E402,F401  (offline defaults)


def _cache() -> Path:
    return Path(
        os.environ.get("BASE_MODEL_CACHE")
        or os.environ.get("TRAINING_TEST_CACHE")
        or REPO / ".cache" / "test-models"
    )


def noisy(pairs: list[dict[str, str]], share: float, seed: int) -> list[dict[str, str]]:
    """Pairs with a `share` of them flipped (chosen and rejected swapped), seeded."""
    rng = random.Random(seed)
    out = []
    for p in pairs:
        if rng.random() < share:
            p = {**p, "chosen": p["rejected"], "rejected": p["chosen"]}
        out.append(p)
    return out


def best_of_n_expectation(selector: list[float], values: list[float], n: int) -> float:
    """E[value of the selector's best of n samples drawn without replacement from these N].

    Sorted by selector ascending (1-based rank i), the best of a random n-subset is rank i with
    probability C(i - 1, n - 1) / C(N, n).
    """
    order = sorted(range(len(selector)), key=lambda i: selector[i])
    total = math.comb(len(order), n)
    return sum(
        math.comb(rank - 1, n - 1) / total * values[order[rank - 1]]
        for rank in range(n, len(order) + 1)
    )


def bon_curves(
    gold: list[list[float]], selectors: dict[str, list[list[float]]], ns: list[int]
) -> dict[str, list[dict[str, float]]]:
    """Per selector: for each n, mean over prompts of the gold and selector score of the best."""
    curves: dict[str, list[dict[str, float]]] = {}
    for name, scores in selectors.items():
        points = []
        for n in ns:
            g = [best_of_n_expectation(s, v, n) for s, v in zip(scores, gold, strict=True)]
            p = [best_of_n_expectation(s, s, n) for s in scores]
            kl = math.log(n) - (n - 1) / n
            points.append({"n": n, "kl": kl, "gold": sum(g) / len(g), "proxy": sum(p) / len(p)})
        curves[name] = points
    return curves


def member_scores(paths: list[str], prompts: list[str], texts: list[str]) -> list[list[float]]:
    from training.reward import RewardScorer

    return [RewardScorer(p).score_completions(prompts, texts) for p in paths]


def ensemble_cost(parent: str, pairs: list[dict], work: Path, args: argparse.Namespace) -> dict:
    """K members in one call against K separate runs on the same resamples and seeds."""
    from training.config import RewardEnsembleConfig, RewardTrainConfig
    from training.ensemble import member_indices, train_reward_ensemble
    from training.reward import train_reward

    rm = {"learning_rate": 1e-3, "epochs": args.rm_epochs, "batch_size": 16, "max_length": 128}
    # Warm-up (imports, first allocations), so neither arm pays it alone.
    train_reward(parent, pairs[:16], work / "warm-up", RewardTrainConfig(**{**rm, "epochs": 1}))
    wall, cpu = time.perf_counter(), time.process_time()
    result = train_reward_ensemble(
        parent, pairs, work / "ensemble", RewardEnsembleConfig(members=args.members, **rm)
    )
    one_call = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    for k, rows in enumerate(member_indices(len(pairs), args.members, 0, bootstrap=True)):
        config = RewardTrainConfig(seed=k, **rm)
        train_reward(parent, [pairs[i] for i in rows], work / f"separate-{k}", config)
    separate = (time.perf_counter() - wall, time.process_time() - cpu)
    # The floor: K members' own training (each `trainer.train()`), which no sharing removes.
    floor = sum(m["train_cpu_seconds"] for m in result.metrics["member_runs"])
    return {
        "members": result.metrics["members"],
        "floor_cpu_s": round(floor, 1),
        "one_call_wall_s": round(one_call[0], 1),
        "one_call_cpu_s": round(one_call[1], 1),
        "separate_wall_s": round(separate[0], 1),
        "separate_cpu_s": round(separate[1], 1),
    }


def grpo_run(
    label: str,
    parent: str,
    reward: Any,
    prompts: list[dict],
    judge_rows: list[dict],
    beta: float,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """A GRPO run with the detector recording (not stopping): its curve and verdict."""
    from training.config import GRPOTrainConfig
    from training.lexicon import sentiment
    from training.online_rl import train_grpo

    steps_per_epoch = math.ceil(len(prompts) * args.generations / args.batch)
    config = GRPOTrainConfig(
        learning_rate=args.lr,
        batch_size=args.batch,
        num_generations=args.generations,
        max_completion_length=args.new_tokens,
        max_length=128,
        epochs=args.grpo_steps / steps_per_epoch,
        beta=beta,
        judge_every=args.judge_every,
        judge_prompts=len(judge_rows),
        divergence_window=3,
        divergence_stop=False,
    )

    def lexicon(_prompt: str, text: str) -> float:
        return float(sentiment(text))

    result = train_grpo(
        parent, reward, prompts, work / label, config, judge=lexicon, judge_rows=judge_rows
    )
    d = result.metrics["divergence"]
    return {
        "label": label,
        "beta": beta,
        "curve": d["curve"],
        "diverged": d["diverged"],
        "detector_would_stop_at": d["stopped_at_step"],
        "reason": d["reason"],
        "train_s": result.metrics["train_seconds"],
    }


def plot(bon: dict, grpo: list[dict], path: Path) -> list[str]:
    """Gold and optimised reward against sqrt(KL); PNG and SVG beside `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, points in bon.items():
        x = [math.sqrt(p["kl"]) for p in points]
        left.plot(x, [p["gold"] for p in points], "o-", label=f"best-of-n, {name}")
        right.plot(x, [p["proxy"] for p in points], "o-", label=f"best-of-n, {name}")
    for run in grpo:
        x = [math.sqrt(p.get("kl", 0.0)) for p in run["curve"]]
        name = f"GRPO, {run['label']} (beta {run['beta']})"
        left.plot(x, [p["judge"] for p in run["curve"]], "s--", label=name)
        right.plot(x, [p["proxy"] for p in run["curve"]], "s--", label=name)
    left.set(xlabel="sqrt(KL to the parent), sqrt(nats)", ylabel="gold: lexicon sentiment")
    right.set(xlabel="sqrt(KL to the parent), sqrt(nats)", ylabel="optimised reward (own scale)")
    left.set_title("Gold judge")
    right.set_title("What was optimised")
    left.legend(fontsize=7)
    fig.tight_layout()
    written = []
    for ext in (".png", ".svg"):
        out = path.with_suffix(ext)
        fig.savefig(out, dpi=110)
        written.append(str(out))
    plt.close(fig)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="parent model dir (default: the learning test's small)")
    parser.add_argument("--work", default=str(REPO / ".cache" / "bench-overoptimisation"))
    parser.add_argument("--train-prompts", type=int, default=384)
    parser.add_argument("--samples", type=int, default=8, help="K per training prompt")
    parser.add_argument("--noise", type=float, default=0.25, help="share of flipped pairs")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--rm-epochs", type=float, default=3.0)
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--bon-samples", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--grpo-prompts", type=int, default=256)
    parser.add_argument("--grpo-steps", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--judge-every", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "overoptimisation.png")
    parser.add_argument("--smoke", action="store_true", help="tiny model, tiny sizes: runs only")
    parser.add_argument(
        "--cost-only", action="store_true", help="the ensemble's cost alone (data, then stop)"
    )
    parser.add_argument(
        "--grpo-only",
        action="store_true",
        help="reuse the models and best-of-n figures of the last run in --work; run GRPO only",
    )
    args = parser.parse_args()
    if args.smoke:
        args.train_prompts, args.samples, args.members, args.rm_epochs = 12, 4, 2, 1.0
        args.eval_prompts, args.bon_samples, args.new_tokens = 2, 8, 8
        args.grpo_prompts, args.grpo_steps, args.batch, args.generations = 4, 2, 4, 2
        args.judge_every = 1

    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig, GenerateConfig, RewardTrainConfig
    from training.env import limit_threads
    from training.evaluate import preference_accuracy_reward
    from training.experiment import corpus_prompts, on_policy_pairs
    from training.generate import generate
    from training.guards import aggregate_scores
    from training.lexicon import sentiment
    from training.reward import train_reward

    limit_threads(args.threads)
    work = Path(args.work) / ("smoke" if args.smoke else "run")
    work.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.plot = work / "overoptimisation.png"
    size = BootstrapConfig.tiny() if args.smoke else BootstrapConfig.small()
    parent = args.model or bootstrap_base_model(_cache(), size).output_dir
    print(f"parent {parent}; load {os.getloadavg()}; {json.dumps(vars(args), default=str)}")

    if args.grpo_only:
        previous = json.loads((work / "results.json").read_text())
        return report_grpo(previous, parent, work, args)

    clock = time.perf_counter()
    sample = GenerateConfig(
        num_samples=args.samples, max_new_tokens=args.new_tokens, seed=args.seed, stop=("\n\n",)
    )
    train_prompts = corpus_prompts(args.train_prompts, args.seed, heldout=False)
    clean = on_policy_pairs(train_prompts, generate(parent, train_prompts, sample).samples)
    if len(clean) < 4:  # a tiny model in --smoke: written pairs, said so
        clean += [
            {"prompt": p, "chosen": " a useful and simple value.", "rejected": " an error."}
            for p in train_prompts[:4]
        ]
        print("too few sampled pairs: written pairs added")
    pairs = noisy(clean, args.noise, args.seed)
    eval_prompts = corpus_prompts(args.eval_prompts, args.seed + 1, heldout=True)
    test_pairs = on_policy_pairs(
        eval_prompts, generate(parent, eval_prompts, sample.replace(num_samples=4)).samples
    )
    print(
        f"{len(pairs)} pairs ({args.noise:.0%} flipped); data {time.perf_counter() - clock:.0f} s"
    )

    rm = RewardTrainConfig(learning_rate=1e-3, epochs=args.rm_epochs, batch_size=16, max_length=128)
    if args.cost_only:
        cost = ensemble_cost(parent, pairs, work, args)
        print(f"ensemble cost ({len(pairs)} pairs, load {os.getloadavg()}): {json.dumps(cost)}")
        return None
    proxy = train_reward(parent, pairs, work / "proxy", rm).output_dir
    cost = ensemble_cost(parent, pairs, work, args)
    members = cost["members"]
    accuracy = {}
    if test_pairs:
        accuracy["proxy"] = preference_accuracy_reward(proxy, test_pairs)["accuracy"]
        for k, m in enumerate(members):
            accuracy[f"member {k}"] = preference_accuracy_reward(m, test_pairs)["accuracy"]
    print(f"ensemble cost {cost}; held-out accuracy on {len(test_pairs)} pairs {accuracy}")

    clock = time.perf_counter()
    bon_config = GenerateConfig(
        num_samples=args.bon_samples, max_new_tokens=args.new_tokens, seed=args.seed + 2
    )
    bon_samples = generate(parent, eval_prompts, bon_config).samples
    texts = [[s.text for s in row] for row in bon_samples]
    flat_p = [p for p, row in zip(eval_prompts, texts, strict=True) for _ in row]
    flat_t = [t for row in texts for t in row]
    per = len(texts[0])

    def rows(flat: list[float]) -> list[list[float]]:
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    proxy_flat = member_scores([proxy], flat_p, flat_t)[0]
    member_flat = member_scores(members, flat_p, flat_t)
    selectors = {
        "proxy": rows(proxy_flat),
        "ensemble min": rows(aggregate_scores(member_flat, "min", 1.0)),
        "ensemble mean - std": rows(aggregate_scores(member_flat, "mean_minus_std", 1.0)),
    }
    gold = rows([float(sentiment(t)) for t in flat_t])
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= per]
    bon = bon_curves(gold, selectors, ns)
    print(f"best-of-n sampling and scoring {time.perf_counter() - clock:.0f} s")

    out = {
        "args": vars(args),
        "pairs": len(pairs),
        "accuracy": accuracy,
        "cost": cost,
        "bon": bon,
        "proxy": proxy,
        "train_prompts": train_prompts,
        "eval_prompts": eval_prompts,
    }
    report_grpo(out, parent, work, args)


def report_grpo(out: dict[str, Any], parent: str, work: Path, args: argparse.Namespace) -> None:
    """The GRPO runs, then the tables, plots and results.json of the whole study."""
    bon, proxy, members = out["bon"], out["proxy"], out["cost"]["members"]
    ns = [p["n"] for p in bon["proxy"]]
    rl_prompts = [{"prompt": p} for p in out["train_prompts"][: args.grpo_prompts]]
    judge_rows = [{"prompt": p} for p in out["eval_prompts"]]
    grpo = []
    for label, reward, beta in (
        ("proxy", proxy, 0.04),
        ("ensemble min", members, 0.04),
        ("proxy", proxy, 0.0),
    ):
        clock = time.perf_counter()
        tag = f"{label.replace(' ', '-')}-beta{beta}"
        try:
            run = grpo_run(tag, parent, reward, rl_prompts, judge_rows, beta, work, args)
            run["label"] = label
        except Exception as exc:  # a failed run is a row of the report, not the end of it
            run = {"label": label, "beta": beta, "curve": [], "error": f"{exc}"[:200]}
        print(f"GRPO {label} beta {beta}: {time.perf_counter() - clock:.0f} s", flush=True)
        grpo.append(run)

    print("\n## Best-of-n against the gold judge\n")
    print("| selector | " + " | ".join(f"n={n}" for n in ns) + " |")
    print("|---|" + "---|" * len(ns))
    print("| sqrt(KL) | " + " | ".join(f"{math.sqrt(p['kl']):.2f}" for p in bon["proxy"]) + " |")
    for name, points in bon.items():
        gold_row = " | ".join(f"{p['gold']:.3f} ({p['proxy']:.2f})" for p in points)
        print(f"| {name}: gold (own score) | {gold_row} |")
    print("\n## GRPO: gold and optimised reward on fresh held-out samples\n")
    print("| run | step | sqrt(KL) | gold | optimised reward | tokens |")
    print("|---|---|---|---|---|---|")
    for run in grpo:
        for p in run["curve"]:
            print(
                f"| {run['label']}, beta {run['beta']} | {int(p['step'])} "
                f"| {math.sqrt(p.get('kl', 0.0)):.2f} | {p['judge']:.3f} | {p['proxy']:.3f} "
                f"| {p['length']:.1f} |"
            )
        verdict = run.get("reason") or run.get("error") or "never fired"
        print(f"| {run['label']}, beta {run['beta']}: detector | {verdict} |||||")
    written = plot(bon, [r for r in grpo if r["curve"]], args.plot)
    print(f"\nplots: {', '.join(written)}")
    print(f"load after: {os.getloadavg()}")
    out.update(grpo=grpo, args=vars(args))
    (work / "results.json").write_text(json.dumps(out, indent=2, default=str))
    failed = [r for r in grpo if "error" in r]
    if failed:
        raise SystemExit(f"{len(failed)} GRPO run(s) failed: {failed[0]['error']}")


if __name__ == "__main__":
    main()
