"""The autopilot's settings: what an admin may set, its bounds, and the check of each step's
parameters by the rules of the step's job kind."""

from __future__ import annotations

from typing import Any

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem, ServiceError
from feedback_app.core.models import Project
from training.config import Range

from ..models import Autopilot
from .steps import STEP_PARAM_STEPS, STEPS, autopilot_stages

SHARE = Range(0, 1, low_open=True)
UNIT = Range(0, 1)
KL = Range(0, 1_000_000)
H2H_SHARE = Range(0, 1, high_open=True)
RANKINGS = Range(1, 1_000_000_000, integer=True)
FAILED_GATES = Range(0, 1000, integer=True)


def _stage_names() -> list[str]:
    return [stage.name for stage in autopilot_stages()]


# Each setting and what it allows: a type, a list of values (or a function giving them, read
# when checked: the stage table may grow), or a Range.
SETTINGS = {
    "enabled": bool,
    "paused": bool,
    "trigger": Autopilot.Trigger.values,
    "trigger_rankings": RANKINGS,
    "trigger_share": SHARE,
    "stage": _stage_names,
    "min_win_rate_low": UNIT,
    "max_kl": KL,
    "min_reward_accuracy": UNIT,
    "head_to_head_share": H2H_SHARE,
    "max_failed_gates": FAILED_GATES,
    "step_params": dict,
}


def settings_dict(pilot: Autopilot) -> dict[str, Any]:
    """The settings as stored (and as a run copies them when it starts)."""
    return {name: getattr(pilot, name) for name in SETTINGS}


def _check_value(name: str, allowed: Any, value: Any) -> Any:
    if allowed is bool:
        if not isinstance(value, bool):
            raise InvalidInput(Problem(name, "must be true or false"))
        return value
    if allowed is dict:
        if not isinstance(value, dict):
            raise InvalidInput(Problem(name, "must be a JSON object"))
        return value
    if callable(allowed):
        allowed = allowed()
    if isinstance(allowed, list):
        if value not in allowed:
            raise InvalidInput(Problem(name, f"must be one of {allowed}"))
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not allowed.allows(value):
        raise InvalidInput(Problem(name, f"must be {allowed}"))
    return float(value) if not allowed.integer else value


def _prefixed(step: str, exc: ServiceError) -> InvalidInput:
    return InvalidInput([Problem(f"step_params.{step}.{p.field}", p.message) for p in exc.problems])


def check_step_params(project: Project, stage: str, value: dict[str, Any]) -> dict[str, Any]:
    """Each step's parameters checked by the rules of its job kind (the ids a run fills in are
    refused); stored as given, so a default that changes later still applies."""
    unknown = sorted(set(value) - set(STEP_PARAM_STEPS))
    if unknown:
        raise InvalidInput(
            Problem(f"step_params.{unknown[0]}", f"not a step; one of {list(STEP_PARAM_STEPS)}")
        )
    for name, given in value.items():
        if not isinstance(given, dict):
            raise InvalidInput(Problem(f"step_params.{name}", "must be a JSON object"))
        step = STEPS[name]
        taken = sorted(set(given) & step.run_sets)
        if taken:
            raise InvalidInput(
                Problem(f"step_params.{name}.{taken[0]}", "set by the autopilot for each run")
            )
        try:
            step.check(project, stage, given)
        except ServiceError as exc:
            raise _prefixed(name, exc) from exc
    return value


def check_settings(project: Project, data: Any, current: dict[str, Any]) -> dict[str, Any]:
    """The settings after applying `data` (a JSON object of some of them) to `current`."""
    if not isinstance(data, dict):
        raise InvalidInput(Problem("body", "send a JSON object of settings"))
    storable.check_json(data)
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown setting"))
    merged = dict(current)
    for name, value in data.items():
        merged[name] = _check_value(name, SETTINGS[name], value)
    merged["step_params"] = check_step_params(project, merged["stage"], merged["step_params"])
    return merged


def autopilot_get(*, project: Project) -> Autopilot:
    """The project's autopilot, unsaved with the defaults (off) if it was never set."""
    return Autopilot.objects.filter(project=project).first() or Autopilot(project=project)
