"""Which reward model may judge a policy: never the one it was optimised against.

A policy trained against a reward model (online RL, best-of-n, online DPO: a stage with
`reward_model=True`) has found what that model scores highly, wanted or not; judged by the same
model it wins by construction (docs/benchmarks.md: GRPO "won" 89-92 % by its own reward model
while moving away from what people prefer). So its evaluation, its divergence detector and its
promotion take another reward model version of the project: another seed, one trained on a
held-out split, or an ensemble (judging by its minimum). The rule lives here once; the launch
checks (params.py), the runners and the autopilot's evaluate step call it.
"""

from __future__ import annotations

from feedback_app.core.models import Job, ModelVersion, Project
from training.stages import stage_by_kind

JUDGE_HELP = (
    "train another reward model (another seed, a held-out split) or a reward-model ensemble"
)


def reward_of_job(job: Job | None) -> int | None:
    """The reward model version a training job optimised against (None: it used none)."""
    if job is None:
        return None
    stage = stage_by_kind(job.kind)
    if stage is None or not stage.reward_model:
        return None
    value = job.params.get("reward_model")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def trained_against(policy: ModelVersion) -> int | None:
    """The id of the reward model version `policy` was optimised against, if any."""
    return reward_of_job(policy.job) if policy.job_id else None


def judge_refusal(*, trained_reward: int | None, judge: ModelVersion) -> str | None:
    """Why `judge` may not judge a policy optimised against `trained_reward` (None: it may)."""
    if trained_reward is not None and judge.pk == trained_reward:
        return (
            f"{judge.name} is the reward model the policy is optimised against; a judge must be "
            f"independent of it: {JUDGE_HELP}"
        )
    return None


def judge_pick(*, project: Project, trained_reward: int | None) -> ModelVersion | None:
    """The default judge: the active reward model, else the newest, that is not
    `trained_reward` (None when the project has no other)."""
    return (
        ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.REWARD)
        .exclude(pk=trained_reward)
        .order_by("-is_active", "-id")
        .first()
    )
