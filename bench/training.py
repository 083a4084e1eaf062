"""Benchmark the training package: reward model, DPO, SFT, KTO, GRPO and generation throughput.

    .venv/bin/python bench/training.py                 # everything, prints markdown tables
    .venv/bin/python bench/training.py --experiment    # + the controlled-sentiment table
    .venv/bin/python bench/training.py --ablation --repeat 8 --threads 1  # DPO speed-ups, paired
    .venv/bin/python bench/training.py --smoke         # seconds: every table once (make test)

Every training variant runs in a fresh subprocess (clean peak-memory reading) on the same base
model (the default bootstrap, built or taken from .cache/bootstrap) and the same pairs:
- ours: `train_reward` / `train_dpo` with their CPU set-up (fp32, no checkpointing,
  precomputed reference);
- TRL out of the box: `RewardConfig(output_dir)` / `DPOConfig(output_dir)` defaults, changing only
  what is needed to run here (`use_cpu=True` when bf16 is refused; `report_to="none"`);
- plain torch: a minimal DPO loop (reference log-probs once up front, AdamW, the same batches).
The other stages (`--stages sft,kto,grpo`) run `train_sft` / `train_kto` / `train_grpo` against
TRL's `SFTConfig` / `KTOConfig` / `GRPOConfig` defaults on the same model and the same pairs
(demonstrations: the chosen completions; thumbs: chosen up, rejected down; GRPO: the first
`--rl-prompts` prompts, 4 samples of up to 32 tokens each, scored by a reward model trained
once on the pairs), changing on TRL's side only what is needed to run here, one epoch (TRL's
default is 3) and, for GRPO, the workload (`RL_WORKLOAD`). Each pair of runs goes back to back
in alternating order, `--repeat` rounds, like the ablation; the table gives samples/s (rows, or
completions for GRPO), generation tokens/s inside GRPO, CPU seconds and peak RSS per side, and
the paired ratios.
Figures are measured, never asserted; the machine's load average is printed beside them.
"End to end" is pairs / (setup + train) for every variant: setup runs from loading the model to
the reference log-probs being ready, train is the optimisation. Saving the model and run files
(ours only: the plain loop keeps nothing) is reported apart as `other_seconds`. With
`--variants ...,dpo-plain` the DPO variants' end-to-end ratios to the plain loop are printed
per round (variants of a round run back to back, so the ratio cancels most of the load).
`--ablation`: `dpo-ours` with all of `trl_cpu.TRL_PATCHES` against the same without one, per
patch, `--repeat` pairs each (docs/training.md, "CPU speed-ups inside TRL"). `--smoke`: a tiny
model, 16 pairs and every table once, in this process, so that `make test` catches a change
that breaks the script. The exit status is 1 when any run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training_bench.common import (  # noqa: E402
    STAGE_VARIANTS,
    STAGES,
    VARIANTS,
    _table,
    cpu_kind,
    make_pairs,
)
from training_bench.generation import bench_generation  # noqa: E402
from training_bench.runs import (  # noqa: E402
    ablation_table,
    run_ablation,
    run_stages,
    run_variant,
    run_variants,
)
from training_bench.stages import _reward_model, stages_table  # noqa: E402

import training  # noqa: E402,F401  (offline defaults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", choices=VARIANTS + STAGE_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--reward-model", help=argparse.SUPPRESS)  # with --one, for GRPO
    parser.add_argument("--speedups", help=argparse.SUPPRESS)  # with --one: comma list
    parser.add_argument("--model", help="base model (default: the default bootstrap)")
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--work", default=str(REPO / ".cache" / "bench-training"))
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per training variant (pairs per speed-up)"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="stages to run paired against TRL's defaults (empty: none; also grpo-spg4, sft-cpu, "
        "kto-cpu, grpo-cpu: against TRL in fp32 without checkpointing)",
    )
    parser.add_argument(
        "--rl-prompts", type=int, default=32, help="prompts per GRPO run (4 samples each)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads per run")
    parser.add_argument("--gen-prompts", type=int, default=64)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--no-generation", action="store_true", help="skip the generation table")
    parser.add_argument(
        "--experiment", action="store_true", help="also run the sentiment experiment"
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="only the DPO speed-up ablation: all on against each one off, --repeat pairs each",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: tiny model, 16 pairs, every table once, in this process (for `make test`)",
    )
    args = parser.parse_args()

    import torch

    if args.smoke:
        args.pairs, args.repeat, args.threads = 16, 1, 1
        args.gen_prompts, args.gen_tokens, args.experiment = 4, 4, False
        args.rl_prompts = 4
        args.stages += ",sft-cpu" if args.stages else ""
    torch.set_num_threads(args.threads)
    if args.one:
        speedups = None if args.speedups is None else [s for s in args.speedups.split(",") if s]
        row = run_variant(
            args.one, args.model, args.data, args.work, speedups, args.rl_prompts, args.reward_model
        )
        print(json.dumps(row))
        return

    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig
    from training.data import write_jsonl

    work = Path(args.work) / "smoke" if args.smoke else Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.model:
        model = args.model
    else:
        boot = (
            bootstrap_base_model(REPO / ".cache" / "test-models", BootstrapConfig.tiny())
            if args.smoke
            else bootstrap_base_model(REPO / ".cache" / "bootstrap")
        )
        model = boot.output_dir
        print(f"bootstrap metrics: {json.dumps(boot.metrics)}", flush=True)
    data = work / "pairs.jsonl"
    write_jsonl(data, make_pairs(args.pairs, seed=0))
    print(
        f"model {model}; cores {os.cpu_count()}; torch threads {args.threads}; "
        f"{cpu_kind()}; load {os.getloadavg()}",
        flush=True,
    )

    rows: list[dict[str, Any]] = []
    gen: list[dict[str, Any]] = []
    if args.smoke or args.ablation:
        ablation = run_ablation(
            model, str(data), str(work), args.threads, args.repeat, in_process=args.smoke
        )
        cols = ["round", "layer", "side", "setup_seconds", "train_seconds", "cpu_seconds"]
        cols += ["loss", "load_1min"]
        print("\n## DPO speed-up ablation (every run)\n\n" + _table(ablation, cols), flush=True)
        summary = ablation_table(ablation)
        cols = ["layer", "pairs", "all s", "without s", "median ratio", "min ratio", "max ratio"]
        cols += ["clear gain", "cpu median ratio", "cpu min-max", "ratios"]
        print("\n## DPO speed-up ablation (paired)\n\n" + _table(summary, cols), flush=True)
        rows += ablation
    if not args.ablation:
        if args.variants:
            rows += run_variants(args, model, str(data), str(work))
        if args.stages:
            reward_model = _reward_model(model, str(data), work)
            stage_rows_ = run_stages(args, model, str(data), str(work), reward_model, args.smoke)
            cols = ["round", "comparison", "side", "variant", "setup_seconds", "train_seconds"]
            cols += ["samples_per_s", "samples_per_s_end_to_end", "generation_tokens_per_s"]
            cols += ["cpu_seconds", "peak_rss_mb", "loss", "last_loss", "reward", "load_1min"]
            print("\n## Stages against TRL defaults (every run)\n\n" + _table(stage_rows_, cols))
            summary = stages_table(stage_rows_)
            cols = list(summary[0]) if summary and summary[0].get("pairs") else ["comparison"]
            print("\n## Stages against TRL defaults (paired)\n\n" + _table(summary, cols))
            rows += stage_rows_
        if not args.no_generation:
            gen = bench_generation(model, args.gen_prompts, args.gen_tokens)
            cols = ["batch", "sequences", "completion_tokens", "seconds", "tokens_per_s"]
            print("\n## Generation\n\n" + _table(gen, cols), flush=True)
    print(f"\nload after: {os.getloadavg()}")

    if args.experiment:
        from training.experiment import run_sentiment_experiment

        table = run_sentiment_experiment(work / "experiment", base_model=model)
        print("\n## Sentiment experiment\n\n" + json.dumps(table, indent=2, default=str))
    (work / "results.json").write_text(json.dumps({"training": rows, "generation": gen}, indent=2))
    failed = [r for r in rows if "error" in r]
    if failed:  # a broken variant must not pass for a finished benchmark
        raise SystemExit(f"{len(failed)} run(s) failed: {failed[0]['error']}")


if __name__ == "__main__":
    main()
