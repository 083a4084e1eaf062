"""The autopilot's vocabulary: its steps, their order, and each step's parameters as a table.

A step is an ordinary job of a kind (`policy`: the kind of the run's stage, from the stage
table). Its row says which of its job's parameters the run fills in (the admin may not set
them), how the admin's parameters for it are checked, and how the run builds its job's params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import Project
from training.config import EvalConfig, RewardTrainConfig
from training.stages import PAIRS, PROMPTS, STAGES, Stage, stage_list

from .. import params as checkers
from ..models import AutopilotRun, AutopilotStep

# The steps, in order. KTO trains on a KTO snapshot, built after the pairs one; the gate is a
# decision, not a job (stored on the run); promote runs only when the gate passed.
SNAPSHOT, REWARD, KTO_SNAPSHOT, POLICY, EVALUATE, PROMOTE, GENERATE = (
    "snapshot", "reward", "kto_snapshot", "policy", "evaluate", "promote", "generate",
)  # fmt: skip
GATE = "gate"
STEP_LABELS = {
    SNAPSHOT: "Build the pairs snapshot",
    REWARD: "Train the reward model",
    KTO_SNAPSHOT: "Build the KTO snapshot",
    POLICY: "Train the policy",
    EVALUATE: "Evaluate against the parent",
    GATE: "Gate",
    PROMOTE: "Promote",
    GENERATE: "Generate the next round",
}
# The generate step's round: `round_size` prompts not asked before, chosen by the project's
# selection rule (active selection scores `pool_size` of them), as a generate job takes them.
ROUND_FIELDS = ("prompt_limit", "round_size", "pool_size")
# The evaluate step's default sample: up to this many of the project's evaluation-set prompts
# (16, the evaluate job's own default, needs a win rate of 0.75 to pass a 0.5 lower bound).
AUTOPILOT_EVAL_PROMPTS = 64


def autopilot_stages() -> list[Stage]:
    """The stages the autopilot may train the policy with (the stage table, as it is now)."""
    return [stage for stage in stage_list() if stage.autopilot]


def _own_rows(stage: Stage) -> bool:
    """Whether the stage trains on rows other than the pairs snapshot's (KTO: a KTO snapshot)."""
    return stage.rows not in (PAIRS, PROMPTS)


def run_steps(stage: str) -> list[str]:
    """The steps of a run with `stage`, in order (the gate sits between evaluate and promote)."""
    middle = [KTO_SNAPSHOT] if _own_rows(STAGES[stage]) else []
    return [SNAPSHOT, REWARD, *middle, POLICY, EVALUATE, GATE, PROMOTE, GENERATE]


def step_kind(step: str, stage: str) -> str:
    return STAGES[stage].kind if step == POLICY else STEPS[step].kind


# --- checking the admin's step parameters ------------------------------------------------------


def _limit(given: dict[str, Any]) -> None:
    value = given.get("prompt_limit")
    if value is not None and (isinstance(value, bool) or not checkers.PROMPT_LIMIT.allows(value)):
        raise InvalidInput(Problem("prompt_limit", f"must be {checkers.PROMPT_LIMIT}"))


def _round_size(given: dict[str, Any]) -> None:
    size, pool = given.get("round_size"), given.get("pool_size")
    for field, value in (("round_size", size), ("pool_size", pool)):
        if value is not None and (
            isinstance(value, bool) or not checkers.PROMPT_LIMIT.allows(value)
        ):
            raise InvalidInput(Problem(field, f"must be {checkers.PROMPT_LIMIT}"))
    if pool is not None and size is None:
        raise InvalidInput(Problem("pool_size", "only with round_size"))
    if pool is not None and pool < size:
        raise InvalidInput(Problem("pool_size", "must be at least round_size"))


def _check_evaluate(project: Project, stage: str, given: dict[str, Any]) -> None:
    checkers.check_config(EvalConfig, {k: v for k, v in given.items() if k != "prompt_limit"})
    _limit(given)


def _check_generate(project: Project, stage: str, given: dict[str, Any]) -> None:
    rest = {k: v for k, v in given.items() if k not in ROUND_FIELDS}
    unknown = sorted(set(rest) - set(checkers.GENERATE_FIELDS))
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown parameter"))
    checkers.check_config(
        checkers.GenerateConfig, {"num_samples": project.candidates_per_task, **rest}
    )
    _limit(given)
    _round_size(given)


# --- building a step's job parameters ----------------------------------------------------------


def _made(run: AutopilotRun, step: str, key: str) -> Any:
    """An output of a step's job of this run (the snapshot it built, the version it trained)."""
    done = AutopilotStep.objects.select_related("job").filter(run=run, name=step).first()
    if done is None or done.job is None:
        raise KeyError(step)  # `_start_step` stops the run with it
    return done.job.outputs[key]


def _snapshot_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    return own


def _reward_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    """The reward model starts from the lineage's base LM, not the newest policy: a policy
    tuned towards the last reward model carries that model's blind spots into the next judge,
    and every run's judge then starts from the same weights (its learning curve compares)."""
    from ..versions import lineage_root

    base = lineage_root(run.parent) if run.parent_id else None
    return {**own, "snapshot": _made(run, SNAPSHOT, "snapshot"), "base": base.pk if base else None}


def _stage_snapshot_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    """The stage's own rows, split as the pairs snapshot was."""
    pairs = run.config.get("step_params", {}).get(SNAPSHOT, {})
    split = {k: pairs[k] for k in ("test_fraction", "seed") if k in pairs}
    return {**split, "kind": STAGES[run.config["stage"]].rows}


def _policy_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    stage = STAGES[run.config["stage"]]
    snapshot = _made(run, KTO_SNAPSHOT if _own_rows(stage) else SNAPSHOT, "snapshot")
    out = {**own, "snapshot": snapshot, "policy": run.parent_id}
    if stage.evaluates:
        out["eval_prompts"] = 0  # the evaluate step evaluates, with this run's judge
    if stage.reward_model:
        out["reward_model"] = run.reward_id
    return out


def _evaluate_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    # A policy trained against the run's reward model is judged by another (finetuning/judges.py:
    # the evaluate check picks one, or refuses and the run stops saying why).
    trained_against = STAGES[run.config["stage"]].reward_model
    return {
        "prompt_limit": AUTOPILOT_EVAL_PROMPTS,
        **own,
        "policy": run.policy_id,
        "reward": None if trained_against else run.reward_id,
    }


def _promote_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    return {"model_version": run.policy_id}


def _generate_params(run: AutopilotRun, own: dict[str, Any]) -> dict[str, Any]:
    """Head-to-head with the parent after a promotion, else the active policy alone."""
    k = run.project.candidates_per_task
    parent_share = round(k * run.config["head_to_head_share"])
    if run.promoted and parent_share >= 1 and run.parent_id:
        parent_share = min(parent_share, k - 1)
        return {**own, "model_versions": [run.policy_id, run.parent_id],
                "split": [k - parent_share, parent_share]}  # fmt: skip
    return {**own, "model_versions": [None]}


@dataclass(frozen=True)
class Step:
    """A step's row: its job kind, the params the run sets, the check of the admin's params
    (None: the admin sets none for it), and how the run builds its job's params."""

    kind: str  # "" for the policy step: the kind of the run's stage
    run_sets: frozenset[str]
    check: Callable[[Project, str, dict[str, Any]], Any] | None
    build: Callable[[AutopilotRun, dict[str, Any]], dict[str, Any]]


STEPS: dict[str, Step] = {
    SNAPSHOT: Step(
        "build_dataset", frozenset({"kind"}),
        lambda project, stage, given: checkers.check_build_dataset(project, given),
        _snapshot_params,
    ),
    REWARD: Step(
        "train_reward", frozenset({"snapshot", "base"}),
        lambda project, stage, given: checkers.check_config(RewardTrainConfig, given),
        _reward_params,
    ),
    KTO_SNAPSHOT: Step("build_dataset", frozenset(), None, _stage_snapshot_params),
    POLICY: Step(
        "", frozenset({"snapshot", "policy", "reward_model", "eval_prompts"}),
        lambda project, stage, given: checkers.check_config(STAGES[stage].config, given),
        _policy_params,
    ),
    EVALUATE: Step("evaluate", frozenset({"policy", "reward"}), _check_evaluate, _evaluate_params),
    PROMOTE: Step("promote", frozenset(), None, _promote_params),
    GENERATE: Step(
        "generate", frozenset({"model_versions", "split"}), _check_generate, _generate_params
    ),
}  # fmt: skip
# The step parameters the admin may set: each step's settings, never the ids the run fills in.
STEP_PARAM_STEPS = tuple(name for name, step in STEPS.items() if step.check is not None)


def step_params(run: AutopilotRun, step: str) -> dict[str, Any]:
    """The job parameters of a step: the admin's step settings, plus what this run made."""
    own = dict(run.config.get("step_params", {}).get(step, {}))
    return STEPS[step].build(run, own)
