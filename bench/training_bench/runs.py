"""One run of a variant (in a fresh process, or this one for `--smoke`), and the round-robin
schedules of the variants, the stages and the DPO speed-up ablation."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    EXTRA_STAGES,
    REPO,
    STAGES,
    _median,
    _paired_ratios,
    _rss_mb,
    _seconds,
    _table,
    _tokens,
)
from .dpo import _plain_dpo, _trl_default_args
from .stages import _run_rloo, _run_stage

ENTRY = REPO / "bench" / "training.py"  # the script a run in a fresh process starts


def run_variant(
    variant: str,
    model: str,
    data: str,
    work: str,
    speedups: list[str] | None = None,
    rl_prompts: int = 32,
    reward_model: str | None = None,
) -> dict[str, Any]:
    """One training run; `speedups` (dpo-ours only): the CPU speed-ups to apply, None for all.

    Stage variants (`STAGE_VARIANTS`) count samples: SFT and KTO rows, GRPO completions."""
    import torch  # noqa: F401  (imported before the memory baseline)
    import transformers  # noqa: F401
    import trl  # noqa: F401
    from trl import DPOTrainer, RewardTrainer  # noqa: F401

    from training.data import read_jsonl

    pairs = read_jsonl(data)
    tokens = _tokens(model, pairs)
    out = str(Path(work) / variant)
    rss_before = _rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    info: dict[str, Any] = {"variant": variant, "pairs": len(pairs), "tokens_per_epoch": tokens}
    if variant == "rm-ours":
        from training.config import RewardTrainConfig
        from training.reward import train_reward

        r = train_reward(model, pairs, out, RewardTrainConfig(batch_size=8, logging_steps=10))
        info.update(train_seconds=r.metrics["train_seconds"], loss=r.metrics["train_loss"])
    elif variant.startswith("dpo-ours"):
        from training.config import DPOTrainConfig
        from training.dpo import train_dpo
        from training.trl_cpu import TRL_PATCHES

        config = DPOTrainConfig(batch_size=8, logging_steps=10, lora=variant.endswith("lora"))
        cpu_started = time.process_time()
        r = train_dpo(
            model, pairs, out, config, speedups=tuple(TRL_PATCHES) if speedups is None else speedups
        )
        info.update(
            speedups=",".join(r.metrics["speedups"]),
            # CPU time of the whole call (saving too: 0.04 s): with 1 torch thread it hardly
            # depends on what else the shared machine runs, unlike the wall-clock seconds.
            cpu_seconds=time.process_time() - cpu_started,
            train_seconds=r.metrics["train_seconds"],
            setup_seconds=r.metrics["setup_seconds"],
            loss=r.metrics["train_loss"],
        )
    elif variant in ("rm-trl-default", "dpo-trl-default"):
        from trl import DPOTrainer, RewardTrainer

        from training.data import pairs_to_dataset
        from training.models import load_tokenizer

        kind = variant.split("-")[0]
        args, changed = _trl_default_args(kind, out)
        tok = load_tokenizer(model)
        if kind == "dpo":
            trainer = DPOTrainer(
                model=model, args=args, train_dataset=pairs_to_dataset(pairs), processing_class=tok
            )
        else:
            from transformers import AutoModelForSequenceClassification

            m = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
            m.config.pad_token_id = tok.pad_token_id
            trainer = RewardTrainer(
                model=m, args=args, train_dataset=pairs_to_dataset(pairs), processing_class=tok
            )
        setup = time.perf_counter() - started
        t0 = time.perf_counter()
        output = trainer.train()
        info.update(
            train_seconds=time.perf_counter() - t0,
            setup_seconds=setup,
            loss=output.training_loss,
            changed_from_defaults=changed,
            bf16=args.bf16,
            gradient_checkpointing=args.gradient_checkpointing,
        )
    elif variant == "dpo-plain":
        info.update(_plain_dpo(model, pairs, batch_size=8, lr=5e-5))
    elif variant.startswith("rloo-"):
        info.update(_run_rloo(variant, model, pairs, out, rl_prompts, reward_model))
    elif variant.split("-")[0] in STAGES:
        info.update(_run_stage(variant, model, pairs, out, rl_prompts, reward_model))
    else:
        raise SystemExit(f"unknown variant {variant}")
    info["total_seconds"] = time.perf_counter() - started
    info.setdefault("cpu_seconds", time.process_time() - cpu_started)
    info.setdefault("setup_seconds", info["total_seconds"] - info["train_seconds"])
    # What a variant does besides setup and training: ours saves the model and its run files;
    # the plain loop saves nothing, so end to end counts setup + train only, for every variant.
    info["other_seconds"] = info["total_seconds"] - info["setup_seconds"] - info["train_seconds"]
    if "samples" in info:  # a stage variant: its own unit of work
        info["samples_per_s"] = info["samples"] / info["train_seconds"]
        info["samples_per_s_end_to_end"] = info["samples"] / _seconds(info)
    else:
        info["pairs_per_s"] = len(pairs) / info["train_seconds"]
        info["tokens_per_s"] = tokens / info["train_seconds"]
        info["pairs_per_s_end_to_end"] = len(pairs) / _seconds(info)
    info["peak_rss_mb"] = _rss_mb()
    info["peak_rss_growth_mb"] = _rss_mb() - rss_before
    return info


def _subprocess(
    variant: str,
    model: str,
    data: str,
    work: str,
    threads: int,
    speedups: list[str] | None = None,
    in_process: bool = False,
    rl_prompts: int = 32,
    reward_model: str | None = None,
) -> dict[str, Any]:
    """Run one variant in a fresh process (in this one for `--smoke`: seconds, not minutes)."""
    if in_process:  # an exception ends the smoke run with a traceback and exit status 1
        return run_variant(variant, model, data, work, speedups, rl_prompts, reward_model)
    cmd = [sys.executable, str(ENTRY), "--one", variant, "--model", model, "--data", data]
    cmd += ["--work", work, "--threads", str(threads), "--rl-prompts", str(rl_prompts)]
    if reward_model:
        cmd += ["--reward-model", reward_model]
    if speedups is not None:
        cmd += ["--speedups", ",".join(speedups)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if out.returncode != 0:
        return {"variant": variant, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ablation(
    model: str, data: str, work: str, threads: int, rounds: int, in_process: bool = False
) -> list[dict[str, Any]]:
    """`dpo-ours` with every speed-up against the same without one, per speed-up, paired.

    Each pair runs back to back, alternating which side goes first (A B, then B A), so the
    load of the shared machine and any drift in it fall on both sides alike.
    """
    from training.trl_cpu import TRL_PATCHES

    rows = []
    for r in range(rounds):
        for layer in TRL_PATCHES:
            sides = [("all", list(TRL_PATCHES))]
            sides.append((f"without {layer}", [s for s in TRL_PATCHES if s != layer]))
            for label, speedups in sides if r % 2 == 0 else sides[::-1]:
                row = _subprocess("dpo-ours", model, data, work, threads, speedups, in_process)
                row.update(round=r, layer=layer, side=label, load_1min=os.getloadavg()[0])
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def ablation_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per speed-up: medians of both sides and the paired ratios (without / with, > 1: a gain)."""
    out = []
    for layer in dict.fromkeys(r["layer"] for r in rows):
        pairs: dict[int, dict[str, dict[str, Any]]] = {}
        for r in rows:
            if r["layer"] == layer and "error" not in r:
                pairs.setdefault(r["round"], {})["all" if r["side"] == "all" else "without"] = r
        done = [p for p in pairs.values() if len(p) == 2]
        if not done:
            out.append({"layer": layer, "pairs": 0})
            continue
        ratios = [_seconds(p["without"]) / _seconds(p["all"]) for p in done]
        cpu = [p["without"]["cpu_seconds"] / p["all"]["cpu_seconds"] for p in done]
        median = statistics.median(ratios)
        out.append(
            {
                "layer": layer,
                "pairs": len(done),
                "all s": statistics.median(_seconds(p["all"]) for p in done),
                "without s": statistics.median(_seconds(p["without"]) for p in done),
                "median ratio": median,
                "min ratio": min(ratios),
                "max ratio": max(ratios),
                # The bar a layer must clear to keep its place (docs/training.md).
                "clear gain": median >= 1.03 and min(ratios) > 1.0,
                "cpu median ratio": statistics.median(cpu),
                "cpu min-max": f"{min(cpu):.3f}-{max(cpu):.3f}",
                "ratios": " ".join(f"{x:.3f}" for x in ratios),
            }
        )
    return out


def run_stages(
    args: argparse.Namespace,
    model: str,
    data: str,
    work: str,
    reward_model: str,
    in_process: bool = False,
) -> list[dict[str, Any]]:
    """Each stage's `ours` against `trl-default`, paired like the ablation: back to back,
    alternating which side goes first (A B, then B A), `--repeat` rounds. GRPO also runs with
    the reward model handed to TRL as a path (`grpo-ours-path`), paired with `grpo-ours`."""
    rows = []
    comparisons = [
        (s, *EXTRA_STAGES.get(s, (f"{s}-ours", f"{s}-trl-default")))
        for s in args.stages.split(",")
        if s
    ]
    if "grpo" in args.stages.split(","):
        comparisons.append(("grpo reward as path", "grpo-ours", "grpo-ours-path"))
    for r in range(args.repeat):
        for name, ours, other in comparisons:
            sides = [("ours", ours), ("other", other)]
            for side, variant in sides if r % 2 == 0 else sides[::-1]:
                row = _subprocess(
                    variant,
                    model,
                    data,
                    work,
                    args.threads,
                    in_process=in_process,
                    rl_prompts=args.rl_prompts,
                    reward_model=reward_model,
                )
                row.update(round=r, comparison=name, side=side, load_1min=os.getloadavg()[0])
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def run_variants(args: argparse.Namespace, model: str, data: str, work: str) -> list[dict]:
    """Every variant, round robin `--repeat` times; prints every run, medians, paired ratios."""
    rows = []
    variants = args.variants.split(",")
    for _ in range(args.repeat):  # round robin, so load spikes hit every variant alike
        for variant in variants:
            row = _subprocess(variant, model, data, work, args.threads, in_process=args.smoke)
            row["load_1min"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = [
        "variant",
        "setup_seconds",
        "train_seconds",
        "pairs_per_s",
        "tokens_per_s",
        "pairs_per_s_end_to_end",
        "other_seconds",
        "peak_rss_mb",
        "peak_rss_growth_mb",
        "loss",
        "load_1min",
    ]
    print("\n## Training (every run)\n\n" + _table(rows, cols), flush=True)
    medians = [
        _median([r for r in rows if r["variant"] == v and "error" not in r]) for v in variants
    ]
    print("\n## Training (median per variant)\n\n" + _table([m for m in medians if m], cols))
    for baseline in ("dpo-plain", "dpo-trl-default"):
        for name, ratios in _paired_ratios(rows, len(variants), baseline).items():
            shown = ", ".join(f"{x:.3f}" for x in ratios)
            print(f"{name} / {baseline} end to end, per round: {shown}", flush=True)
    return rows
