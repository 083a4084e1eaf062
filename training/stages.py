"""The training stages, each declared once: the CLI, the app's job kinds, forms, checks, runners
and model enums are all read from this table (docs/training.md, "Adding a stage").

A stage is its name (the model version's stage, the autopilot's choice; `train_<name>` is its
job kind and `train-<name>` its CLI command), its config class, its train function, the rows it
reads, whether it trains against a reward model, and the config fields the launch form shows.
Adding one is one `Stage(...)` below and one train function with the shared signature:

    train(start, [reward_model,] rows, [*also,] out, config, progress) -> a result with
    `output_dir`, `stopped` and `metrics`

(`start` is the model it starts from; `reward_model` only when `reward_model=True`; `also`
the further rows of the same snapshot a stage reads, online DPO's human pairs). The app
needs its own runner only when the generic one (train, register, evaluate) does not fit
(finetuning/runners/training.py). Tests add a stage for a while with `stage_registered`.

No Django here: the CLI reads this module, the app builds on it (the layer contract).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from training.config import (
    DPO_LOSS_TYPES,
    GRPO_LOSS_TYPES,
    KTO_LOSS_TYPES,
    REWARD_AGGREGATES,
    SFT_LOSS_TYPES,
    BestOfNSFTConfig,
    DPOTrainConfig,
    GRPOTrainConfig,
    KTOTrainConfig,
    OnlineDPOConfig,
    RewardEnsembleConfig,
    RewardTrainConfig,
    RLOOTrainConfig,
    SFTTrainConfig,
)

# The rows a stage reads: a kind of dataset snapshot, or "prompts" (the prompts of any kind).
PAIRS, SFT_ROWS, KTO_ROWS, PROMPTS = "pairs", "sft", "kto", "prompts"
# What the CLI names the rows file of each, and what it holds.
ROWS_FILES: dict[str, tuple[str, str]] = {
    PAIRS: ("--pairs", "JSONL of preference pairs"),
    SFT_ROWS: ("--rows", "JSONL of prompt/completion or messages rows"),
    KTO_ROWS: ("--rows", "JSONL of prompt/completion/label rows"),
    PROMPTS: ("--prompts", "JSONL of prompts"),
}
POLICY, REWARD = "policy", "reward"  # what a stage makes: a model version's kind

# Training defaults that depend on where training runs, filled in for any field a launch leaves
# out (job params, the launch forms' initial values, the CLI), each where the stage's config has
# the field (docs/api.md, "Defaults per device"). CPU: the sizes `bench/training.py` measured on
# this machine kind (batch 8, one epoch, 4 samples of 32 tokens per prompt for online RL;
# docs/benchmarks.md, "Training"). TRL's CPU defaults (bf16 autocast, checkpointing, 3 epochs,
# 8 x 512 tokens for GRPO) ran 9-16x slower for the same work on a CPU without native bf16
# (AVX2), 1.0-1.6x on one with AVX512-BF16. A GPU gets TRL's own sizes, the completion capped
# at 128 tokens so that the demo's base model (256 positions) still has room for a prompt.
# Learning rates and betas depend on the model, not the device: they stay the configs' defaults.
DEVICES = ("cpu", "cuda")
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {
        "epochs": 1.0,
        "batch_size": 8,
        "max_length": 256,
        "num_generations": 4,
        "max_completion_length": 32,
    },
    "cuda": {
        "epochs": 3.0,
        "batch_size": 8,
        "max_length": 1024,
        "num_generations": 8,
        "max_completion_length": 128,
    },
}


@dataclass(frozen=True)
class Stage:
    """One training stage. Frozen and hashable: the app caches the form it builds per stage."""

    name: str  # "dpo": the model version's stage, the autopilot's choice
    label: str  # "DPO": the lineage and the autopilot form show it
    title: str  # "Train with DPO": the job kind's label
    config: type  # the config dataclass that validates its settings
    train: str | Callable[..., Any]  # "module:function", imported when it runs (torch)
    rows: str  # PAIRS, SFT_ROWS, KTO_ROWS or PROMPTS
    fields: tuple[str, ...]  # the config fields the launch form shows, in order
    help: str  # the CLI command's one line
    reward_model: bool = False  # trains against a reward model (online RL)
    makes: str = POLICY  # the kind of model version it registers
    evaluates: bool = True  # the job evaluates the new policy on `eval_prompts` prompts
    autopilot: bool = True  # the autopilot may train the policy with it
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()  # text fields' allowed values
    # More rows the train function takes after `rows`, from the same snapshot (online DPO:
    # the prompts to sample, then the snapshot's human pairs): train(start, [reward,] rows,
    # *also, out, config, progress).
    also: tuple[str, ...] = ()
    # It samples from its policy while it trains (online RL, best-of-n, online DPO): its job
    # records the generation engine (training/engines.py) beside where it ran.
    generates: bool = False

    @property
    def kind(self) -> str:
        """Its job kind (`Job.kind`)."""
        return f"train_{self.name}"

    @property
    def command(self) -> str:
        """Its CLI command."""
        return f"train-{self.name}"

    @property
    def start(self) -> str:
        """The parameter (and CLI flag) naming the model it starts from."""
        return "base" if self.makes == REWARD else "policy"

    @property
    def choice_label(self) -> str:
        """The label of its value in the autopilot's stored choices."""
        return f"{self.label} (online RL)" if self.reward_model else self.label

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every kind of rows the train function reads, in the order it takes them."""
        return (self.rows, *self.also)

    @property
    def snapshot_kind(self) -> str | None:
        """The kind of snapshot its job reads (None: any, it reads only prompts).

        >>> STAGES["online_dpo"].snapshot_kind, STAGES["grpo"].snapshot_kind
        ('pairs', None)
        """
        return next((rows for rows in self.inputs if rows != PROMPTS), None)

    def train_function(self) -> Callable[..., Any]:
        """The train function, imported now (it loads torch and transformers)."""
        if callable(self.train):
            return self.train
        module, _, name = self.train.partition(":")
        return getattr(importlib.import_module(module), name)

    def defaults(self, device: str) -> dict[str, Any]:
        """The device-dependent defaults of this stage (its config's fields only).

        >>> STAGES["dpo"].defaults("cpu")
        {'epochs': 1.0, 'batch_size': 8, 'max_length': 256}
        """
        names = {f.name for f in dataclasses.fields(self.config)}
        return {k: v for k, v in DEVICE_DEFAULTS[device].items() if k in names}


_TRAIN = ("learning_rate", "epochs", "batch_size", "max_length")
_ONLINE = ("beta", "learning_rate", "epochs", "batch_size", "num_generations")
_ONLINE += ("max_completion_length", "temperature")
# The guards of a run against a reward model (training/guards.py, docs/training.md "Guards").
_GUARDS = ("reward_aggregate", "reward_std_k")
_DETECTOR = ("judge_every", "judge_prompts", "divergence_window", "divergence_min_rise")
_DETECTOR += ("judge_tolerance", "divergence_stop")
_SAMPLE = ("max_new_tokens", "temperature")

# The order is the job kinds' (and the enums') order.
STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "reward", "Reward model", "Train a reward model", RewardTrainConfig,
            "training.reward:train_reward", PAIRS, _TRAIN, "train a Bradley-Terry reward model",
            makes=REWARD, evaluates=False, autopilot=False,
        ),
        Stage(
            "dpo", "DPO", "Train with DPO", DPOTrainConfig, "training.dpo:train_dpo", PAIRS,
            ("beta", *_TRAIN, "loss_type", "lora"), "train a policy with DPO",
            evaluates=False, choices=(("loss_type", DPO_LOSS_TYPES),),
        ),
        Stage(
            "sft", "SFT", "Train with SFT", SFTTrainConfig, "training.sft:train_sft", SFT_ROWS,
            (*_TRAIN, "loss_type"), "supervised fine-tuning on demonstrations",
            autopilot=False, choices=(("loss_type", SFT_LOSS_TYPES),),
        ),
        Stage(
            "kto", "KTO", "Train with KTO", KTOTrainConfig, "training.kto:train_kto", KTO_ROWS,
            ("beta", *_TRAIN, "desirable_weight", "undesirable_weight", "loss_type"),
            "train a policy with KTO on thumbs up/down",
            choices=(("loss_type", KTO_LOSS_TYPES),),
        ),
        Stage(
            "grpo", "GRPO", "Train with GRPO (online RL)", GRPOTrainConfig,
            "training.online_rl:train_grpo", PROMPTS,
            (*_ONLINE, "loss_type", *_GUARDS, *_DETECTOR),
            "online RL against a reward model: GRPO (what runs instead of PPO)",
            reward_model=True, generates=True,
            choices=(("loss_type", GRPO_LOSS_TYPES), ("reward_aggregate", REWARD_AGGREGATES)),
        ),
        Stage(
            "rloo", "RLOO", "Train with RLOO (online RL)", RLOOTrainConfig,
            "training.online_rl:train_rloo", PROMPTS, (*_ONLINE, *_GUARDS, *_DETECTOR),
            "online RL against a reward model: RLOO", reward_model=True, generates=True,
            choices=(("reward_aggregate", REWARD_AGGREGATES),),
        ),
        # K reward models in one job, one model version whose weights hold them (member-<k>):
        # GRPO, RLOO, best-of-n and online DPO take it as their reward (its worst case by
        # default), an evaluation as its judge (the ensemble minimum).
        Stage(
            "ensemble", "Reward ensemble", "Train a reward-model ensemble",
            RewardEnsembleConfig, "training.ensemble:train_reward_ensemble", PAIRS,
            ("members", "bootstrap", *_TRAIN), "train K reward models (an ensemble) in one run",
            makes=REWARD, evaluates=False, autopilot=False,
        ),
        Stage(
            "best_of_n", "Best-of-n SFT", "Train with best-of-n SFT", BestOfNSFTConfig,
            "training.best_of_n:train_best_of_n_sft", PROMPTS,
            ("n", *_SAMPLE, *_TRAIN, *_GUARDS),
            "rejection-sampling SFT: sample n, keep the reward-best, fine-tune",
            reward_model=True, generates=True,
            choices=(("reward_aggregate", REWARD_AGGREGATES),),
        ),
        Stage(
            "online_dpo", "Online DPO", "Train with online DPO", OnlineDPOConfig,
            "training.online_dpo:train_online_dpo", PROMPTS,
            ("iterations", "samples", "beta", *_SAMPLE, *_TRAIN, "min_margin", *_GUARDS),
            "iterative DPO: the policy samples, the reward labels best against worst,"
            " trained with the human pairs",
            reward_model=True, generates=True, also=(PAIRS,),
            choices=(("reward_aggregate", REWARD_AGGREGATES),),
        ),
    )
}  # fmt: skip


def stage_list() -> list[Stage]:
    """The stages in order (the table as it is now: a test may have added one)."""
    return list(STAGES.values())


def stage_by_kind(kind: str) -> Stage | None:
    """The stage whose job kind is `kind`, or None for a kind that is not a training stage."""
    return next((s for s in STAGES.values() if s.kind == kind), None)


def device_for(device: str | None) -> str:
    """The DEVICE_DEFAULTS key for a device torch names ("mps" trains with the CPU sizes)."""
    return "cuda" if device == "cuda" else "cpu"


def stage_register(stage: Stage) -> None:
    """Add a stage to the table (a name already there is refused)."""
    if stage.name in STAGES:
        raise ValueError(f"stage {stage.name!r} is declared already")
    STAGES[stage.name] = stage


def stage_unregister(name: str) -> None:
    STAGES.pop(name)


@contextlib.contextmanager
def stage_registered(stage: Stage) -> Iterator[Stage]:
    """The table with `stage` in it for the block (tests: a stage declared in one place)."""
    stage_register(stage)
    try:
        yield stage
    finally:
        stage_unregister(stage.name)
