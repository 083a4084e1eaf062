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
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import training  # noqa: E402,F401  (offline defaults)

VARIANTS = (
    "rm-ours",
    "rm-trl-default",
    "dpo-ours",
    "dpo-ours-lora",
    "dpo-trl-default",
    "dpo-plain",
)
# The other stages, each ours against TRL's defaults, run paired (`run_stages`); grpo-ours-path
# hands TRL the reward model's directory instead of our callable (which form is faster).
STAGES = ("sft", "kto", "grpo", "rloo")  # rloo: `_run_rloo`
STAGE_VARIANTS = (
    *(f"{stage}-{side}" for stage in STAGES for side in ("ours", "trl-default")),
    "grpo-ours-path",
    "grpo-ours-spg4",
    *(f"{stage}-trl-cpu" for stage in ("sft", "kto", "grpo")),
)
# `--stages grpo-spg4`: ours with steps_per_generation=4 (one generate call of 32 samples serves
# 4 optimiser steps) against TRL's defaults, which generate 8 samples for every step.
# `--stages sft-cpu,...`: ours against TRL's defaults set up for a CPU as our device defaults are
# (fp32, no activation checkpointing; `trl-cpu`), which splits a ratio against `trl-default`
# into what those two settings cost TRL on this CPU and what our own speed-ups add.
EXTRA_STAGES = {
    "grpo-spg4": ("grpo-ours-spg4", "grpo-trl-default"),
    **{f"{stage}-cpu": (f"{stage}-ours", f"{stage}-trl-cpu") for stage in ("sft", "kto", "grpo")},
}
# The online-RL workload, the same for both sides: 4 samples of up to 32 tokens per prompt,
# 8 samples per step, KL to the reference on (TRL's GRPO default beta=0 would skip the
# reference model and do less work than ours).
RL_WORKLOAD = {"num_generations": 4, "max_completion_length": 32, "beta": 0.04}


def cpu_kind() -> str:
    """The CPU's vector extensions and whether it computes bf16 natively: TRL's CPU defaults
    (bf16 autocast, checkpointing) cost 8-12x on a CPU without it, little on one with AVX512-BF16
    (docs/benchmarks.md), so no ratio against them means anything without this line."""
    import torch

    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return f"cpu {torch.backends.cpu.get_cpu_capability()}, native bf16 {native}"


def _rss_mb() -> float:
    """This process's peak RSS in MB.

    Linux keeps `ru_maxrss` across fork + exec, so a run started by a parent that had just built
    the bootstrap model (~750 MB) reported the parent's peak: VmHWM belongs to the process's own
    address space and starts afresh at exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """Pairs cut from the Python docs: 6-word prompt, two different 24-word continuations."""
    from training.bootstrap import corpus_documents

    words = [w for doc in corpus_documents() for w in doc.split() if w.isascii()]
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a, b = rng.randrange(len(words) - 40), rng.randrange(len(words) - 40)
        pairs.append(
            {
                "prompt": " ".join(words[a : a + 6]),
                "chosen": " " + " ".join(words[a + 6 : a + 30]),
                "rejected": " " + " ".join(words[b : b + 24]),
            }
        )
    return pairs


def stage_rows(stage: str, pairs: list[dict[str, str]], rl_prompts: int) -> list[dict[str, Any]]:
    """The same pairs as each stage reads them: demonstrations (the chosen completion), thumbs
    (chosen up, rejected down, alternating) or the first `rl_prompts` prompts."""
    if stage == "sft":
        return [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]
    if stage == "kto":
        return [
            {"prompt": p["prompt"], "completion": p[key], "label": key == "chosen"}
            for p in pairs
            for key in ("chosen", "rejected")
        ]
    return [{"prompt": p["prompt"]} for p in pairs[:rl_prompts]]


def _tokens(model: str, pairs: list[dict[str, str]]) -> int:
    """Tokens a DPO step reads per epoch: prompt + chosen and prompt + rejected."""
    from training.data import tokenize_pair
    from training.models import load_tokenizer

    tok = load_tokenizer(model)
    total = 0
    for p in pairs:
        ids = tokenize_pair(tok, p)
        total += 2 * len(ids["prompt_ids"]) + len(ids["chosen_ids"]) + len(ids["rejected_ids"])
    return total


def _plain_dpo(model_path: str, pairs: list[dict[str, str]], batch_size: int, lr: float) -> dict:
    """The floor: reference log-probs once, then AdamW on -log sigmoid(beta h), nothing else."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from training.data import tokenize_pair
    from training.losses import dpo_loss
    from training.models import load_tokenizer

    def batch_logps(model: Any, batch: dict) -> tuple[Any, Any]:
        """Completion log-probs, projecting through the LM head only at completion positions."""
        hidden = model.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state[:, :-1]
        mask = batch["completion_mask"][:, 1:].bool()
        labels = batch["input_ids"][:, 1:][mask]
        logp = torch.log_softmax(model.lm_head(hidden[mask]), dim=-1)
        per_token = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
        rows = torch.arange(mask.shape[0]).unsqueeze(1).expand_as(mask)[mask]
        sums = torch.zeros(mask.shape[0], dtype=per_token.dtype).index_add(0, rows, per_token)
        return sums.chunk(2)

    torch.manual_seed(0)
    started = time.perf_counter()
    tok = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    examples = [tokenize_pair(tok, p) for p in pairs]
    collate = DataCollatorForPreference(pad_token_id=tok.pad_token_id)
    batches = [collate(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]
    model.eval()
    with torch.no_grad():
        refs = [batch_logps(model, b) for b in batches]
    setup = time.perf_counter() - started
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    order = list(range(len(batches)))
    random.Random(0).shuffle(order)
    losses = []
    started = time.perf_counter()
    for step, i in enumerate(order):
        for group in optimizer.param_groups:  # linear decay, as the Trainer's default schedule
            group["lr"] = lr * (1 - step / len(order))
        pc, pr = batch_logps(model, batches[i])
        loss = dpo_loss(pc, pr, refs[i][0], refs[i][1], beta=0.1)[0].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return {
        "setup_seconds": setup,
        "train_seconds": time.perf_counter() - started,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def _trl_default_args(kind: str, out: str, cpu: bool = False) -> tuple[Any, list[str]]:
    """TRL's config with its own defaults; only what is needed to run here is changed (and, for
    GRPO, the workload: samples per prompt, their length and the KL term, as ours). `cpu`: also
    fp32 and no activation checkpointing, as our CPU defaults."""
    from trl import DPOConfig, GRPOConfig, KTOConfig, RewardConfig, SFTConfig

    cls = {
        "dpo": DPOConfig,
        "rm": RewardConfig,
        "sft": SFTConfig,
        "kto": KTOConfig,
        "grpo": GRPOConfig,
    }[kind]
    base: dict[str, Any] = {"report_to": "none", "save_strategy": "no"}
    # The same work as ours: one epoch (TRL's default is 3; before 2026-11-30 the DPO and
    # reward-model variants left it at 3 and so did 3x the work, docs/benchmarks.md).
    base["num_train_epochs"] = 1
    if kind == "grpo":
        base.update(RL_WORKLOAD)
    if cpu:
        base.update(bf16=False, activation_checkpointing=False)
    changed = [f"{k}={v}" for k, v in base.items()]
    try:
        args = cls(output_dir=out, **base)
    except ValueError:
        args = cls(output_dir=out, use_cpu=True, **base)
        changed.append("use_cpu=True (plain defaults refuse bf16 on this CPU)")
    return args, changed


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


def bench_generation(model: str, prompts: int, new_tokens: int) -> list[dict[str, Any]]:
    from training.config import GenerateConfig
    from training.experiment import corpus_prompts
    from training.generate import generate
    from training.models import load_causal_lm

    loaded = load_causal_lm(model)
    texts = corpus_prompts(prompts, 3, heldout=True)
    rows = []
    for batch in (1, 8, 32):
        config = GenerateConfig(num_samples=1, max_new_tokens=new_tokens, batch_size=batch)
        generate(loaded, texts[:batch], config)  # warm-up
        result = generate(loaded, texts, config)
        rows.append({"batch": batch, **result.metrics})
    return rows


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
    cmd = [sys.executable, __file__, "--one", variant, "--model", model, "--data", data]
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


def _paired_ratios(
    rows: list[dict[str, Any]], per_round: int, baseline: str
) -> dict[str, list[float]]:
    """End-to-end throughput of each other DPO variant over `baseline`'s, per round.

    Variants of one round ran back to back, so a ratio within a round cancels most of the load
    the shared machine had at that moment.
    """
    ratios: dict[str, list[float]] = {}
    for r in range(len(rows) // per_round):
        round_rows = {x["variant"]: x for x in rows[r * per_round : (r + 1) * per_round]}
        base = round_rows.get(baseline, {}).get("pairs_per_s_end_to_end")
        for name, row in round_rows.items():
            if name.startswith("dpo-") and name != baseline and base and "error" not in row:
                ratios.setdefault(name, []).append(row["pairs_per_s_end_to_end"] / base)
    return ratios


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {}
    out: dict[str, Any] = {"variant": runs[0]["variant"]}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(statistics.median(r[key] for r in runs))
    return out


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:,.1f}"  # seconds need the second digit
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _seconds(row: dict[str, Any]) -> float:
    """End-to-end time as every variant counts it: setup + train."""
    return row["setup_seconds"] + row["train_seconds"]


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


if __name__ == "__main__":
    main()
