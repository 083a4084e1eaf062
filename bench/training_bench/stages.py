"""The stages benchmark: SFT, KTO, GRPO and RLOO, ours against TRL's defaults, and its table."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from .common import RL_WORKLOAD, stage_rows
from .dpo import _trl_default_args


def _run_stage(
    variant: str,
    model: str,
    pairs: list[dict[str, str]],
    out: str,
    rl_prompts: int,
    reward_model: str | None,
) -> dict[str, Any]:
    """One SFT, KTO or GRPO run: ours (`train_sft`/`train_kto`/`train_grpo`) or TRL's own."""
    stage, side = variant.split("-", 1)
    rows = stage_rows(stage, pairs, rl_prompts)
    if side.startswith("ours"):
        from training import config as cfg
        from training.kto import train_kto
        from training.online_rl import train_grpo
        from training.sft import train_sft

        if stage == "sft":
            r = train_sft(model, rows, out, cfg.SFTTrainConfig(batch_size=8, logging_steps=10))
        elif stage == "kto":
            r = train_kto(model, rows, out, cfg.KTOTrainConfig(batch_size=8, logging_steps=10))
        else:
            spg = 4 if side.endswith("spg4") else 1
            config = cfg.GRPOTrainConfig(
                batch_size=8, logging_steps=10, steps_per_generation=spg, **RL_WORKLOAD
            )
            reward_as = "path" if side.endswith("path") else "callable"
            r = train_grpo(model, reward_model or "", rows, out, config, reward_as=reward_as)
        m = r.metrics
        info = {"setup_seconds": m["setup_seconds"], "train_seconds": m["train_seconds"]}
        # Setup + training only, as on TRL's side below (saving, which only ours does, left out).
        info["cpu_seconds"] = m["cpu_seconds"]
        info["loss"] = m["train_loss"]
        info["last_loss"] = m.get("last/loss")  # the last logged loss (mean of its steps)
        if stage == "grpo":
            info.update(samples=m["samples"], generation_tokens_per_s=m["generation_tokens_per_s"])
            info.update(generation_share=m["generation_share"], reward=m["last_reward"])
        else:
            info["samples"] = len(rows) * m["fraction_done"]
        return info

    from trl import GRPOTrainer, KTOTrainer, SFTTrainer

    from training.data import rows_to_dataset
    from training.models import load_tokenizer
    from training.online_rl import GenerationTimer

    started = time.perf_counter()
    cpu_started = time.process_time()
    args, changed = _trl_default_args(stage, out, cpu=side == "trl-cpu")
    tok = load_tokenizer(model)
    keys = {"sft": ("prompt", "completion"), "kto": ("prompt", "completion", "label")}
    dataset = rows_to_dataset(rows, keys.get(stage, ("prompt",)))
    timer = None
    if stage == "grpo":
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_model,
            args=args,
            train_dataset=dataset,
            processing_class=tok,
        )
        timer = GenerationTimer(trainer)  # measures only
    else:
        cls = SFTTrainer if stage == "sft" else KTOTrainer
        trainer = cls(model=model, args=args, train_dataset=dataset, processing_class=tok)
    setup = time.perf_counter() - started
    t0 = time.perf_counter()
    output = trainer.train()
    info = {
        "train_seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - cpu_started,
        "setup_seconds": setup,
        "loss": output.training_loss,
        "changed_from_defaults": changed,
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
        "samples": len(rows) * float(trainer.state.epoch or 0),
    }
    logged = [h for h in trainer.state.log_history if "loss" in h]
    info["last_loss"] = logged[-1]["loss"] if logged else None
    if stage == "grpo" and logged:
        info["reward"] = logged[-1].get("reward")
    if timer is not None:
        info.update(samples=timer.sequences, generation_share=timer.seconds / info["train_seconds"])
        info["generation_tokens_per_s"] = timer.tokens / timer.seconds if timer.seconds else 0.0
    return info


def _run_rloo(
    variant: str,
    model: str,
    pairs: list[dict[str, str]],
    out: str,
    rl_prompts: int,
    reward_model: str | None,
) -> dict[str, Any]:
    """One RLOO run, GRPO's workload (`RL_WORKLOAD`, the same prompts and reward model): ours
    (`train_rloo`) or TRL's `RLOOConfig` defaults changed only to run here, one epoch."""
    from training.online_rl import GenerationTimer

    rows = stage_rows("rloo", pairs, rl_prompts)
    if variant == "rloo-ours":
        from training.config import RLOOTrainConfig
        from training.online_rl import train_rloo

        config = RLOOTrainConfig(batch_size=8, **RL_WORKLOAD)
        m = train_rloo(model, reward_model or "", rows, out, config).metrics
        return {
            "setup_seconds": m["setup_seconds"],
            "train_seconds": m["train_seconds"],
            "loss": m["train_loss"],
            "samples": m["samples"],
            "generation_tokens_per_s": m["generation_tokens_per_s"],
            "generation_share": m["generation_share"],
            "reward": m["last_reward"],
        }
    from trl import RLOOConfig, RLOOTrainer

    from training.data import rows_to_dataset
    from training.models import load_tokenizer

    started = time.perf_counter()
    base: dict[str, Any] = {"report_to": "none", "save_strategy": "no", "num_train_epochs": 1}
    base.update(RL_WORKLOAD)
    changed = [f"{k}={v}" for k, v in base.items()]
    try:
        args = RLOOConfig(output_dir=out, **base)
    except ValueError:
        args = RLOOConfig(output_dir=out, use_cpu=True, **base)
        changed.append("use_cpu=True (plain defaults refuse bf16 on this CPU)")
    trainer = RLOOTrainer(
        model=model,
        reward_funcs=reward_model,
        args=args,
        train_dataset=rows_to_dataset(rows, ("prompt",)),
        processing_class=load_tokenizer(model),
    )
    timer = GenerationTimer(trainer)  # measures only
    setup = time.perf_counter() - started
    t0 = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - t0
    return {
        "train_seconds": seconds,
        "setup_seconds": setup,
        "loss": output.training_loss,
        "changed_from_defaults": changed,
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
        "samples": timer.sequences,
        "generation_share": timer.seconds / seconds,
        "generation_tokens_per_s": timer.tokens / timer.seconds if timer.seconds else 0.0,
    }


def stages_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per comparison: medians of both sides, and the paired throughput ratios ours / other
    (> 1: ours is faster): end to end, training alone, and per CPU second."""
    out = []
    for name in dict.fromkeys(r["comparison"] for r in rows):
        pairs: dict[int, dict[str, dict[str, Any]]] = {}
        for r in rows:
            if r["comparison"] == name and "error" not in r:
                pairs.setdefault(r["round"], {})[r["side"]] = r
        done = [p for p in pairs.values() if len(p) == 2]
        if not done:
            out.append({"comparison": name, "pairs": 0})
            continue

        # Throughput ratios (samples per second, or per CPU second), so that a side doing more
        # or less work than the other is still compared fairly.
        def ratio(p: dict[str, dict[str, Any]], key: str) -> float:
            return p["ours"][key] / p["other"][key]

        ratios = [ratio(p, "samples_per_s_end_to_end") for p in done]
        train = [ratio(p, "samples_per_s") for p in done]
        cpu = [
            (p["ours"]["samples"] / p["ours"]["cpu_seconds"])
            / (p["other"]["samples"] / p["other"]["cpu_seconds"])
            for p in done
        ]

        def med(side: str, key: str, pairs: list = done) -> float:
            values = [p[side].get(key) for p in pairs]
            return statistics.median(float("nan") if v is None else v for v in values)

        out.append(
            {
                "comparison": name,
                "pairs": len(done),
                "ours samples/s": med("ours", "samples_per_s_end_to_end"),
                "other samples/s": med("other", "samples_per_s_end_to_end"),
                "ours gen tok/s": med("ours", "generation_tokens_per_s"),
                "other gen tok/s": med("other", "generation_tokens_per_s"),
                "median ratio": statistics.median(ratios),
                "min ratio": min(ratios),
                "train ratio": statistics.median(train),
                "cpu ratio": statistics.median(cpu),
                "ours cpu s": med("ours", "cpu_seconds"),
                "other cpu s": med("other", "cpu_seconds"),
                "ours rss MB": med("ours", "peak_rss_mb"),
                "other rss MB": med("other", "peak_rss_mb"),
                # The same learning on both sides: last logged loss (and GRPO's last reward).
                "ours last loss": med("ours", "last_loss"),
                "other last loss": med("other", "last_loss"),
                "ours reward": med("ours", "reward"),
                "other reward": med("other", "reward"),
                "ratios": " ".join(f"{x:.2f}" for x in ratios),
            }
        )
    return out


def _reward_model(model: str, data: str, work: Path) -> str:
    """A reward model for the GRPO runs, trained once on the bench pairs (kept between runs)."""
    from training.checkpoint import METRICS_FILE
    from training.config import RewardTrainConfig
    from training.data import read_jsonl
    from training.reward import train_reward

    out = work / "reward-model"
    if not (out / METRICS_FILE).exists():
        train_reward(model, read_jsonl(data), out, RewardTrainConfig(batch_size=8))
    return str(out)
