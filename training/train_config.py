"""The training stages' configs (reward model, DPO, SFT, KTO, online RL and the stages built on
them), each a validated dataclass; `training/config.py` re-exports them, so import from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.config_base import (
    BATCH_SIZE,
    BETA,
    MAX_LENGTH,
    MAX_NEW_TOKENS,
    SAMPLES,
    SEED,
    TOP_P,
    Range,
    _Config,
    _is_num,
    _require,
    bounded,
)

# Loss types of TRL 1.16's DPOTrainer that need only pairs (no extra columns or models).
DPO_LOSS_TYPES: tuple[str, ...] = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)


LEARNING_RATE = Range(0, 1, low_open=True)


@dataclass
class _TrainConfig(_Config):
    learning_rate: float = bounded(1e-4, LEARNING_RATE)
    epochs: float = bounded(1.0, Range(0, 1000, low_open=True))
    batch_size: int = bounded(8, BATCH_SIZE)
    max_length: int = bounded(256, MAX_LENGTH)  # prompt + completion tokens
    seed: int = bounded(0, SEED)
    warmup_ratio: float = bounded(0.0, Range(0, 1, high_open=True))
    weight_decay: float = bounded(0.0, Range(0, 1))
    logging_steps: int = bounded(1, Range(1, 100_000, integer=True))
    gradient_checkpointing: bool = False  # saves memory on big models, costs ~30 % time

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            isinstance(self.gradient_checkpointing, bool),
            "gradient_checkpointing",
            "must be a bool",
            self.gradient_checkpointing,
        )


# Most epochs `min_steps` may add: a project of 20 pairs does not train for 80 epochs.
MIN_STEPS_MAX_EPOCHS = 10.0


@dataclass
class RewardTrainConfig(_TrainConfig):
    """Bradley-Terry reward model: loss = -log sigmoid(r(chosen) - r(rejected)).

    Pairs longer than max_length are dropped by TRL (not truncated); the count is in the metrics.

    Defaults for the data a project has (hundreds of pairs), measured on the default model
    (docs/benchmarks.md, "Reward model learning curve (issue 21)"): TRL's 1e-4 for one epoch
    left it at 0.63 on a random yardstick at 500 rankings, and so did three epochs at 1e-4.
    The score head is new (random) and the pairs few: one pass of 490 pairs is 62 steps at
    batch 8, too few updates at that rate. Hence a higher rate and `min_steps`: training runs
    at least that many steps (at this batch size, in one process) by adding epochs, at most
    MIN_STEPS_MAX_EPOCHS, so a small dataset gets enough updates and a large one (2,000
    pairs and more) still trains the one epoch it asked for. Nothing here reads the data's
    content: the same defaults were checked on a second, unrelated preference.
    """

    learning_rate: float = bounded(5e-4, LEARNING_RATE)
    center_rewards_coefficient: float | None = None  # adds c * mean((r_c + r_r)^2)
    min_steps: int = bounded(200, Range(0, 1_000_000, integer=True))  # 0: epochs as given

    def epochs_for(self, pairs: int) -> float:
        """The epochs to run on `pairs` pairs: `epochs`, raised to reach `min_steps`.

        >>> RewardTrainConfig().epochs_for(490), RewardTrainConfig().epochs_for(5000)
        (3.2653061224489797, 1.0)
        >>> RewardTrainConfig().epochs_for(20), RewardTrainConfig(min_steps=0).epochs_for(20)
        (10.0, 1.0)
        """
        if pairs <= 0 or self.min_steps <= 0:
            return self.epochs
        needed = min(self.min_steps * self.batch_size / pairs, MIN_STEPS_MAX_EPOCHS)
        return max(self.epochs, needed)

    def __post_init__(self) -> None:
        super().__post_init__()
        c = self.center_rewards_coefficient
        _require(
            c is None or (_is_num(c) and 0 <= c <= 100),
            "center_rewards_coefficient",
            "must be None or a number in [0, 100]",
            c,
        )


@dataclass
class DPOTrainConfig(_TrainConfig):
    """Direct Preference Optimisation (Rafailov et al. 2023) through TRL's DPOTrainer.

    TRL's default learning rate (1e-6) suits large pretrained models; small models need more.
    `min_steps`, as the reward model's: a round's few hundred pairs are 20-30 steps of one
    epoch at batch 8, too few updates to move the policy at all (KL to the parent 0.3-0.8
    nats on the default model, docs/benchmarks.md "Rounds"), so training adds epochs (at most
    MIN_STEPS_MAX_EPOCHS) until that many steps; a large snapshot trains the epochs it asked.
    On one round's 181 pairs of the default model, 5e-5 for 1 to 4 epochs moved the property
    the annotators prefer by +0.04 to +0.06 (within noise); 1e-4 is the rate at which 70-100
    steps move it clearly (KL to the parent about 9-15 nats), not yet the 2e-4-5e-4 that
    spend 30-50 nats in one round.
    """

    learning_rate: float = bounded(1e-4, LEARNING_RATE)
    min_steps: int = bounded(100, Range(0, 1_000_000, integer=True))  # 0: epochs as given
    beta: float = bounded(0.1, BETA)  # strength of the KL tie to the reference policy
    loss_type: str = "sigmoid"  # one of DPO_LOSS_TYPES
    label_smoothing: float = bounded(0.0, Range(0, 0.5, high_open=True))  # robust/exo_pair/aot
    precompute_ref_log_probs: bool = True  # one reference pass per run, no reference in memory
    lora: bool = False
    lora_r: int = bounded(8, Range(1, 1024, integer=True))
    lora_alpha: int = bounded(16, Range(1, 4096, integer=True))
    lora_dropout: float = bounded(0.05, Range(0, 1, high_open=True))
    lora_target_modules: tuple[str, ...] = ()  # empty: every linear layer except the LM head

    epochs_for = RewardTrainConfig.epochs_for  # `epochs`, raised to reach `min_steps`

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(
            self.loss_type in DPO_LOSS_TYPES,
            "loss_type",
            f"must be one of {', '.join(DPO_LOSS_TYPES)}",
            self.loss_type,
        )
        if self.loss_type == "exo_pair":
            _require(
                self.label_smoothing > 0,
                "label_smoothing",
                "must be > 0 for loss_type exo_pair",
                self.label_smoothing,
            )
        for name in ("precompute_ref_log_probs", "lora"):
            _require(
                isinstance(getattr(self, name), bool), name, "must be a bool", getattr(self, name)
            )
        if isinstance(self.lora_target_modules, list):
            self.lora_target_modules = tuple(self.lora_target_modules)
        _require(
            isinstance(self.lora_target_modules, tuple)
            and len(self.lora_target_modules) <= 64
            and all(isinstance(m, str) and 0 < len(m) <= 200 for m in self.lora_target_modules),
            "lora_target_modules",
            "must be a list of module names",
            self.lora_target_modules,
        )


SFT_LOSS_TYPES: tuple[str, ...] = ("nll", "dft")
KTO_LOSS_TYPES: tuple[str, ...] = ("kto", "apo_zero_unpaired")
# GRPOTrainer 1.16 loss types that need nothing beyond a reward function.
GRPO_LOSS_TYPES: tuple[str, ...] = ("dapo", "grpo", "dr_grpo", "bnpo")
GRPO_SCALE_REWARDS: tuple[str, ...] = ("group", "batch", "none")
# How the scores of a reward-model ensemble become one reward (training/guards.py).
REWARD_AGGREGATES: tuple[str, ...] = ("min", "mean_minus_std", "mean")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, name, f"must be one of {', '.join(allowed)}", value)


def _bools(obj: Any, *names: str) -> None:
    for name in names:
        _require(isinstance(getattr(obj, name), bool), name, "must be a bool", getattr(obj, name))


@dataclass
class SFTTrainConfig(_TrainConfig):
    """Supervised fine-tuning on demonstrations through TRL's SFTTrainer.

    The loss is on the completion tokens only (the prompt is context, not a target). TRL's
    default learning rate (2e-5) suits large pretrained models; small models need more.
    """

    learning_rate: float = bounded(1e-4, LEARNING_RATE)
    loss_type: str = "nll"  # or "dft" (Dynamic Fine-Tuning)
    completion_only_loss: bool = True
    # Batches of rows of similar length (transformers' LengthGroupedSampler: shuffled, then
    # sorted within groups of 4 to 50 batches), so less padding is computed: docs/training.md.
    group_by_length: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("loss_type", self.loss_type, SFT_LOSS_TYPES)
        _bools(self, "completion_only_loss", "group_by_length")


@dataclass
class KTOTrainConfig(_TrainConfig):
    """Kahneman-Tversky Optimisation (Ethayarajh et al. 2024) on unpaired thumbs up/down.

    The KL term of the loss is estimated from each prompt with another row's completion in the
    same batch, so a batch needs at least 2 rows. TRL's default learning rate is 1e-6.
    """

    learning_rate: float = bounded(5e-5, LEARNING_RATE)
    batch_size: int = bounded(8, Range(2, 1024, integer=True))
    beta: float = bounded(0.1, BETA)
    loss_type: str = "kto"  # or "apo_zero_unpaired" (no KL estimate)
    desirable_weight: float = bounded(1.0, Range(0, 100, low_open=True))
    undesirable_weight: float = bounded(1.0, Range(0, 100, low_open=True))
    precompute_ref_log_probs: bool = True  # one reference pass per run, no reference in memory

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("loss_type", self.loss_type, KTO_LOSS_TYPES)
        _bools(self, "precompute_ref_log_probs")


@dataclass
class _OnlineRLConfig(_TrainConfig):
    """Shared by GRPO and RLOO: sample `num_generations` completions per prompt, score them
    with the reward model, push the policy towards the better ones within each group.

    `batch_size` counts completions per optimiser step (so prompts per step are
    batch_size / num_generations); `max_length` caps prompt tokens + max_completion_length.
    Defaults are for CPU: short completions, small groups.
    """

    learning_rate: float = bounded(2e-5, LEARNING_RATE)
    batch_size: int = bounded(8, Range(2, 1024, integer=True))
    num_generations: int = bounded(4, Range(2, 64, integer=True))
    max_completion_length: int = bounded(32, MAX_NEW_TOKENS)
    temperature: float = bounded(1.0, Range(0, 10, low_open=True))
    top_p: float = bounded(1.0, TOP_P)
    beta: float = bounded(0.04, Range(0, 10))  # KL to the reference; 0: no reference, no KL
    epsilon: float = bounded(0.2, Range(0, 1, low_open=True))  # PPO-style ratio clip
    num_iterations: int = bounded(1, Range(1, 64, integer=True))  # updates per generation batch
    # Optimiser steps served by one generation batch. 4 doubles generation tokens/s on CPU (one
    # generate call of 32 sequences instead of 4 of 8) but TRL then needs a forward pass for
    # the old log-probs, and end to end it measured equal (docs/training.md); steps 2-4 would
    # learn from samples of a policy up to 3 steps old (clipped importance ratio, as in PPO).
    steps_per_generation: int = bounded(1, Range(1, 64, integer=True))
    reward_model_batch_size: int = bounded(32, BATCH_SIZE)
    # Guards against over-optimising a learned reward (training/guards.py, docs/training.md).
    # With several reward models: "min" (worst case) or "mean_minus_std" (mean - k * std over
    # the members, Coste et al. 2024), or "mean".
    reward_aggregate: str = "min"
    reward_std_k: float = bounded(1.0, Range(0, 10))
    # (low, high): every reward is clipped into it before TRL sees it; None: no clipping.
    reward_clip_range: tuple[float, float] | None = None
    # Divergence detector: every `judge_every` steps (0: off) fresh samples of `judge_prompts`
    # prompts are scored by the independent judge and the training reward; the run stops when
    # over the last `divergence_window` evaluations the training reward rose by more than
    # `divergence_min_rise` while the judge did not rise by more than `judge_tolerance`.
    judge_every: int = bounded(0, Range(0, 100_000, integer=True))
    judge_prompts: int = bounded(8, Range(1, 1024, integer=True))
    divergence_window: int = bounded(3, Range(2, 100, integer=True))
    divergence_min_rise: float = bounded(0.0, Range(0, 1e6))
    judge_tolerance: float = bounded(0.0, Range(0, 1e6))
    divergence_stop: bool = True  # False: record the curves and the verdict, do not stop

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("reward_aggregate", self.reward_aggregate, REWARD_AGGREGATES)
        _bools(self, "divergence_stop")
        if isinstance(self.reward_clip_range, list):
            self.reward_clip_range = tuple(self.reward_clip_range)  # type: ignore[assignment]
        clip = self.reward_clip_range
        _require(
            clip is None
            or (
                isinstance(clip, tuple)
                and len(clip) == 2
                and all(_is_num(c) for c in clip)
                and clip[0] < clip[1]
            ),
            "reward_clip_range",
            "must be None or [low, high] with low < high",
            clip,
        )
        _require(
            self.batch_size % self.num_generations == 0,
            "batch_size",
            f"must be a multiple of num_generations={self.num_generations}",
            self.batch_size,
        )
        _require(
            self.max_completion_length < self.max_length,
            "max_completion_length",
            f"must be < max_length={self.max_length} (room for the prompt)",
            self.max_completion_length,
        )


@dataclass
class GRPOTrainConfig(_OnlineRLConfig):
    """Group Relative Policy Optimisation through TRL's GRPOTrainer: PPO's clipped objective and
    KL penalty, with the group's mean reward as the baseline instead of a value network.

    beta defaults to 0.04, not TRL's 0.0: without a KL term nothing ties the policy to its
    start, and GRPO only normalises a learned reward within each group, so an exploited score
    is never capped; against a reward model trained on a few hundred pairs the policy drifted
    to runs of `=` while the reward rose (docs/benchmarks.md, "Over-optimisation").
    """

    loss_type: str = "dapo"
    scale_rewards: str = "group"  # divide advantages by the group's (or batch's) reward std

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("loss_type", self.loss_type, GRPO_LOSS_TYPES)
        _one_of("scale_rewards", self.scale_rewards, GRPO_SCALE_REWARDS)


@dataclass
class RLOOTrainConfig(_OnlineRLConfig):
    """REINFORCE Leave-One-Out through TRL's RLOOTrainer: each completion's baseline is the mean
    reward of the other completions of its prompt. TRL's default beta for RLOO is 0.05."""

    beta: float = bounded(0.05, Range(0, 10))
    normalize_advantages: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _bools(self, "normalize_advantages")


def _check_aggregate(obj: Any) -> None:
    _one_of("reward_aggregate", obj.reward_aggregate, REWARD_AGGREGATES)


@dataclass
class RewardEnsembleConfig(RewardTrainConfig):
    """K reward models trained in one call (training/ensemble.py), for an ensemble reward.

    The pairs are tokenised once and every member reuses them; members differ by seed (head
    initialisation, data order) and, with `bootstrap`, by a resample with replacement of the
    pairs, which makes their errors less alike (Coste et al. 2024 use seeds alone on models
    pretrained apart; ours share one backbone, so the data must differ).
    """

    members: int = bounded(4, Range(2, 16, integer=True))
    bootstrap: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _bools(self, "bootstrap")


@dataclass
class BestOfNSFTConfig(SFTTrainConfig):
    """Rejection-sampling SFT (training/best_of_n.py): sample `n` completions per prompt from
    the policy, keep the one the reward (ensemble: `reward_aggregate`) scores best, fine-tune on
    the kept ones with SFT. Few labels go far: the reward model labels, people do not."""

    n: int = bounded(8, SAMPLES)
    max_new_tokens: int = bounded(32, MAX_NEW_TOKENS)
    temperature: float = bounded(1.0, Range(0, 10, low_open=True))
    top_p: float = bounded(1.0, TOP_P)
    generate_batch_size: int = bounded(32, BATCH_SIZE)
    reward_aggregate: str = "min"
    reward_std_k: float = bounded(1.0, Range(0, 10))

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_aggregate(self)


@dataclass
class OnlineDPOConfig(DPOTrainConfig):
    """Online (iterative) DPO (training/online_dpo.py): each iteration the current policy samples
    `samples` completions per prompt, the reward (ensemble: `reward_aggregate`) labels the best
    against the worst, and DPO trains on those pairs together with the human pairs, from the
    current policy (its own reference). Pairs whose reward margin is <= `min_margin` are
    dropped (a near tie is noise)."""

    iterations: int = bounded(2, Range(1, 16, integer=True))
    samples: int = bounded(4, Range(2, 64, integer=True))
    max_new_tokens: int = bounded(32, MAX_NEW_TOKENS)
    temperature: float = bounded(1.0, Range(0, 10, low_open=True))
    top_p: float = bounded(1.0, TOP_P)
    generate_batch_size: int = bounded(32, BATCH_SIZE)
    reward_aggregate: str = "min"
    reward_std_k: float = bounded(1.0, Range(0, 10))
    min_margin: float = bounded(0.0, Range(0, 1e6))

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_aggregate(self)
