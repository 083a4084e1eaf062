"""What every training benchmark shares: the variants' names, the pairs, the CPU line, peak
memory, medians, paired ratios and markdown tables."""

from __future__ import annotations

import random
import resource
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

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
