"""Online RL against our reward model: GRPO and RLOO through TRL's trainers.

There is no PPO here because TRL has none: its PPOTrainer moved to `trl.experimental` in 1.10
and was removed in 2026 (huggingface/trl PR 7020). A user who asks for PPO gets GRPO:
- GRPO (Shao et al. 2024) keeps PPO's clipped surrogate objective (`epsilon`, several updates
  per generation batch with `num_iterations`) and its KL control (`beta`, the KL to the
  reference policy as a penalty), but replaces the value network with a group baseline: each
  prompt is sampled `num_generations` times and a completion's advantage is its reward minus
  the mean of its group (divided by the group's std with `scale_rewards="group"`).
- RLOO (Ahmadian et al. 2024) is REINFORCE with a leave-one-out baseline: a completion's
  advantage is its reward minus the mean reward of the *other* completions of the same prompt;
  TRL's RLOOTrainer folds the KL to the reference into the reward (`beta`).

Each step: sample completions for a batch of prompts, score every prompt + completion with the
reward model (a sequence-classification model with one output, as `training.reward` saves it),
and update the policy. The reward and the KL to the reference (when `beta > 0`) are logged per
step, so the progress callback and the saved history show both over the run.

The reward model is passed to TRL as a callable (`RewardModelFunction`) rather than as a path,
by default: it reads each text with the eos the reward model saw in training (TRL's path form
scores prompt + completion without it) and truncates to the model's length;
`bench/training.py` measures the two forms (docs/benchmarks.md).

Guards against over-optimising a learned reward (`training.guards`, `training.detector`):
`reward_model` may be several reward models, reduced to one reward by `reward_aggregate`
(worst case by default); rewards are clipped into `reward_clip_range`; beta is > 0 by default;
with `judge_every` > 0 an independent judge scores fresh samples during the run and the
divergence detector stops it when the optimised reward keeps rising while the judge does not.
All of it is recorded in `metrics["guards"]` and `metrics["divergence"]`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import write_run_files
from training.config import GRPOTrainConfig, RLOOTrainConfig, _OnlineRLConfig
from training.data import PairError, render_prompt, rows_to_dataset, validate_prompt_rows
from training.detector import DivergenceDetector, build_detector
from training.engines import EngineChoice, generation_engine, trainer_generation_args
from training.env import common_trainer_args
from training.guards import EnsembleReward, reward_members
from training.models import ModelRef, load_tokenizer
from training.progress import Progress
from training.results import TrainResult
from training.reward import RewardScorer
from training.saving import save_policy
from training.trainer_utils import new_tracker, run_trainer
from training.trl_cpu import TRL_PATCHES, trl_patched

REWARD_FORMS = ("callable", "path")
# One reward model (a path), several (an ensemble), or a TRL reward callable.
RewardSpec = ModelRef | Sequence[ModelRef] | Callable[..., list[float]]


def training_reward(reward_model: RewardSpec, config: _OnlineRLConfig) -> EnsembleReward:
    """The reward the policy is optimised against, with the config's ensemble and clipping."""
    members = reward_members(reward_model)
    for i, member in enumerate(members):
        if not callable(member) and not Path(member, "config.json").is_file():
            name = "reward_model" if len(members) == 1 else f"reward_model[{i}]"
            raise PairError(f"{name}: no saved model in {member}")
    return EnsembleReward(
        members,
        aggregate=config.reward_aggregate,
        std_k=config.reward_std_k,
        clip_range=config.reward_clip_range,
        batch_size=config.reward_model_batch_size,
    )


class RewardModelFunction:
    """A TRL reward function: scores (prompt, completion) with our reward model.

    TRL calls it with the prompts and the decoded completions of a generation batch (strings,
    or message lists for chats) and logs its mean as `rewards/reward_model/mean`.
    """

    __name__ = "reward_model"

    def __init__(self, reward_model: ModelRef | RewardScorer, batch_size: int = 32) -> None:
        if isinstance(reward_model, RewardScorer):
            self.scorer = reward_model
        else:
            self.scorer = RewardScorer(reward_model, batch_size=batch_size)

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return self.scorer.score_completions(prompts, completions)


class GenerationTimer:
    """Times the trainer's generation calls and counts the tokens they produce."""

    def __init__(self, trainer: Any) -> None:
        self.seconds = 0.0
        self.tokens = 0
        self.sequences = 0
        inner = trainer._generate_single_turn

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            out = inner(*args, **kwargs)
            self.seconds += time.perf_counter() - started
            # GRPO returns (completion_ids, logprobs), RLOO completion_ids alone.
            ids = out[0] if isinstance(out, tuple) else out
            self.sequences += len(ids)
            self.tokens += sum(len(c) for c in ids)
            return out

        trainer._generate_single_turn = timed


def check_prompt_lengths(
    tokenizer: Any, rows: Sequence[dict[str, Any]], config: _OnlineRLConfig, model_limit: int
) -> None:
    """Refuse before any work a prompt that leaves no room for max_completion_length tokens
    within max_length (or the policy's position limit, if smaller)."""
    limit = min(config.max_length, model_limit)
    room = limit - config.max_completion_length
    if room < 1:
        raise PairError(
            f"max_completion_length: must be < {limit} (the policy reads at most {model_limit}"
            f" positions), got {config.max_completion_length}"
        )
    for i, row in enumerate(rows):
        n = len(tokenizer(text=render_prompt(tokenizer, row["prompt"]))["input_ids"])
        if n > room:
            raise PairError(
                f"rows[{i}]['prompt']: {n} tokens, more than the {room} left by"
                f" max_completion_length={config.max_completion_length} within {limit}"
            )


def _trainer_args(cls: Any, out_dir: str | Path, config: _OnlineRLConfig, **extra: Any) -> Any:
    return cls(
        output_dir=str(out_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        beta=config.beta,
        epsilon=config.epsilon,
        num_iterations=config.num_iterations,
        steps_per_generation=config.steps_per_generation,
        seed=config.seed,
        warmup_steps=float(config.warmup_ratio),  # a float < 1 is a ratio
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        **extra,
        **{**common_trainer_args(), "activation_checkpointing": config.gradient_checkpointing},
    )


def build_online_trainer(
    method: str,
    policy_model: ModelRef,
    reward_model: RewardSpec | EnsembleReward,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: _OnlineRLConfig,
    callbacks: list[Any] | None = None,
    reward_as: str = "callable",
    engine: EngineChoice | None = None,
) -> Any:
    """A configured GRPOTrainer or RLOOTrainer scoring with `reward_model`, generating with
    `engine` (`engines.generation_engine()` when None: vLLM on a GPU worker that has it)."""
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    if reward_as not in REWARD_FORMS:
        raise ValueError(f"reward_as: must be one of {', '.join(REWARD_FORMS)}, got {reward_as!r}")
    validate_prompt_rows(rows)
    if isinstance(reward_model, EnsembleReward):
        ensemble = reward_model
    else:
        ensemble = training_reward(reward_model, config)
    if reward_as == "path" and (
        len(ensemble.members) > 1 or callable(ensemble.members[0]) or config.reward_clip_range
    ):
        raise ValueError("reward_as: 'path' takes one reward model directory and no clipping")
    tokenizer = load_tokenizer(policy_model, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(policy_model), dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    limit = getattr(model.config, "max_position_embeddings", config.max_length)
    check_prompt_lengths(tokenizer, rows, config, limit)
    dataset = rows_to_dataset(rows, ("prompt",))
    reward: Any = str(ensemble.members[0]) if reward_as == "path" else ensemble
    generation = trainer_generation_args(engine or generation_engine())
    if method == "grpo":
        assert isinstance(config, GRPOTrainConfig)
        extra = {"loss_type": config.loss_type, "scale_rewards": config.scale_rewards, **generation}
        args, cls = _trainer_args(GRPOConfig, out_dir, config, **extra), GRPOTrainer
    else:
        assert isinstance(config, RLOOTrainConfig)
        extra = {"normalize_advantages": config.normalize_advantages, **generation}
        args, cls = _trainer_args(RLOOConfig, out_dir, config, **extra), RLOOTrainer
    return cls(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks or [],
    )


def _train_online(
    method: str,
    policy_model: ModelRef,
    reward_model: RewardSpec,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: _OnlineRLConfig,
    progress: Progress | None,
    speedups: Collection[str],
    reward_as: str,
    judge: Any,
    judge_pool: Sequence[ModelRef],
    judge_rows: Sequence[dict[str, Any]] | None,
) -> TrainResult:
    tracker = new_tracker(progress)
    started = time.perf_counter()
    cpu_started = time.process_time()
    validate_prompt_rows(rows)
    engine = generation_engine()  # before any work: a required vLLM that cannot run refuses
    reward = training_reward(reward_model, config)
    detector: DivergenceDetector | None = None
    if config.judge_every:
        detector = build_detector(policy_model, rows, config, reward, judge, judge_pool, judge_rows)
    callbacks = [tracker.as_callback()] + ([detector.as_callback()] if detector else [])
    with trl_patched(speedups) as patched:
        trainer = build_online_trainer(
            method, policy_model, reward, rows, out_dir, config, callbacks, reward_as, engine
        )
        timer = GenerationTimer(trainer)
        setup_seconds = time.perf_counter() - started
        tracker.started = time.perf_counter()
        metrics = run_trainer(trainer, tracker)
    # Setup + training in CPU seconds of this process (saving left out): with one torch
    # thread it hardly moves with the load of a shared machine, unlike wall-clock time.
    cpu_seconds = time.process_time() - cpu_started
    rewards = [h["reward"] for h in tracker.history if "reward" in h]
    kls = [h["kl"] for h in tracker.history if "kl" in h]
    diverged = detector is not None and detector.summary()["stopped"]
    metrics.update(
        method=method,
        policy_model=str(policy_model),
        reward_model=reward.names[0] if len(reward.names) == 1 else reward.names,
        reward_as=reward_as,
        reference="separate copy" if config.beta > 0 else "none (beta = 0)",
        setup_seconds=round(setup_seconds, 3),
        cpu_seconds=round(cpu_seconds, 3),
        prompts=len(rows),
        samples=timer.sequences,
        samples_per_s=timer.sequences / metrics["train_seconds"],
        generation_seconds=round(timer.seconds, 3),
        generation_share=timer.seconds / metrics["train_seconds"],
        # What generated: the engine chosen and the flag TRL actually ran with.
        generation_engine={**engine.to_dict(), "use_vllm": bool(trainer.args.use_vllm)},
        generated_tokens=timer.tokens,
        generation_tokens_per_s=timer.tokens / timer.seconds if timer.seconds else 0.0,
        first_reward=rewards[0] if rewards else None,
        last_reward=rewards[-1] if rewards else None,
        last_kl=kls[-1] if kls else None,
        speedups=list(patched),
        guards={"reward": reward.describe(), "beta": config.beta, "judge": _judge_name(detector)},
        divergence=detector.summary() if detector else None,
        stopped_by="divergence detector" if diverged else "request" if tracker.stopped else None,
    )
    stopped = tracker.stopped or diverged
    save_policy(trainer, out_dir)
    write_run_files(out_dir, config, metrics, tracker.history, stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=stopped, history=tracker.history
    )


def _judge_name(detector: DivergenceDetector | None) -> str | None:
    return detector.judge.name if detector else None


def train_grpo(
    policy_model: ModelRef,
    reward_model: RewardSpec,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: GRPOTrainConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
    reward_as: str = "callable",
    judge: Any = None,
    judge_pool: Sequence[ModelRef] = (),
    judge_rows: Sequence[dict[str, Any]] | None = None,
) -> TrainResult:
    """GRPO from `policy_model` (also the reference) on prompt `rows`, rewarded by
    `reward_model`; saves a plain causal LM to `out_dir`.

    `reward_model`: a reward model directory, several (an ensemble, reduced by the config's
    `reward_aggregate`), or a TRL reward callable. `reward_as`: hand TRL one reward model as
    our callable ("callable") or as its directory ("path", TRL loads and scores it).
    `judge` / `judge_pool` / `judge_rows`: the independent judge of the divergence detector
    (`guards.independent_judge`; needed when `config.judge_every` > 0) and its prompts.
    `speedups` as in `train_dpo`.
    """
    return _train_online(
        "grpo",
        policy_model,
        reward_model,
        rows,
        out_dir,
        config or GRPOTrainConfig(),
        progress,
        speedups,
        reward_as,
        judge,
        judge_pool,
        judge_rows,
    )


def train_rloo(
    policy_model: ModelRef,
    reward_model: RewardSpec,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: RLOOTrainConfig | None = None,
    progress: Progress | None = None,
    *,
    speedups: Collection[str] = tuple(TRL_PATCHES),
    reward_as: str = "callable",
    judge: Any = None,
    judge_pool: Sequence[ModelRef] = (),
    judge_rows: Sequence[dict[str, Any]] | None = None,
) -> TrainResult:
    """RLOO from `policy_model` on prompt `rows`, rewarded by `reward_model` (as `train_grpo`)."""
    return _train_online(
        "rloo",
        policy_model,
        reward_model,
        rows,
        out_dir,
        config or RLOOTrainConfig(),
        progress,
        speedups,
        reward_as,
        judge,
        judge_pool,
        judge_rows,
    )
