"""The guards of a run against a reward model, as its job page shows them (issue 22).

Read from what the run recorded (training/guards.py, training/detector.py: `metrics["guards"]`,
`metrics["divergence"]`, best-of-n's and online DPO's `reward`) and its stored params (the
judge the launch chose): what the policy was optimised against (one model, an ensemble's worst
case or mean - k std), the clipping, the KL coefficient, the independent judge, and the
divergence detector's verdict with its proxy-against-judge curve.
"""

from __future__ import annotations

from typing import Any

from feedback_app.core.models import Job, ModelVersion
from training.stages import stage_by_kind


def _reward_text(reward: dict[str, Any]) -> str:
    members = reward.get("members") or []
    how = reward.get("aggregate")
    if how in (None, "single") or len(members) < 2:
        return "one reward model"
    if how == "min":
        return f"ensemble of {len(members)}, worst case (minimum)"
    if how == "mean_minus_std":
        return f"ensemble of {len(members)}, mean − {reward.get('std_k'):g}·std"
    return f"ensemble of {len(members)}, mean"


def job_guards(job: Job) -> dict[str, Any] | None:
    """The guards table and the detector's verdict of a job whose stage trains against a
    reward model; None for any other job (or before it recorded anything)."""
    stage = stage_by_kind(job.kind)
    if stage is None or not stage.reward_model:
        return None
    out = job.outputs if isinstance(job.outputs, dict) else {}
    metrics = out.get("metrics") if isinstance(out.get("metrics"), dict) else {}
    guards = metrics.get("guards") or {}
    reward = guards.get("reward") or (metrics.get("best_of_n") or {}).get("reward")
    if not reward and isinstance(metrics.get("reward"), dict):
        reward = metrics["reward"]  # online DPO's
    p = job.params
    names = dict(
        ModelVersion.objects.filter(pk__in=[p.get("reward_model"), p.get("judge")]).values_list(
            "pk", "name"
        )
    )
    rows: list[tuple[str, str]] = [
        ("Optimised against", names.get(p.get("reward_model"), "?")),
    ]
    if reward:
        rows.append(("Reward", _reward_text(reward)))
        clip = reward.get("clip_range")
        share = reward.get("clipped_share")
        rows.append(
            ("Clipping", f"[{clip[0]:g}, {clip[1]:g}], {share:.0%} of rewards clipped" if clip
             else "none")
        )  # fmt: skip
    if "beta" in p:
        rows.append(("KL coefficient (beta)", f"{p['beta']:g}"))
    judge = names.get(p.get("judge"))
    rows.append(("Independent judge", judge or "none (no other reward model: not evaluated)"))
    divergence = metrics.get("divergence")
    if divergence:
        verdict = divergence.get("reason") if divergence.get("diverged") else "no divergence"
        rows.append(("Divergence detector", verdict or "no divergence"))
    elif "judge_every" in p:
        rows.append(("Divergence detector", "off (judge_every 0)"))
    return {
        "rows": rows,
        "stopped": out.get("stopped"),
        "curve": (divergence or {}).get("curve") or [],
    }
