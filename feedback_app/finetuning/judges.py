"""Which reward model may judge a policy: never the one it was optimised against, nor one that
learnt from the same pairs.

A policy trained against a reward model (online RL, best-of-n, online DPO: a stage with
`reward_model=True`) has found what that model scores highly, wanted or not; judged by the same
model it wins by construction (docs/benchmarks.md: GRPO "won" 89-92 % by its own reward model
while moving away from what people prefer). Another seed trained on the same pairs is no better
a judge: it learnt the same features from the same few hundred pairs, so it rises with the
proxy (docs/benchmarks.md: guarded RLOO moved away from the preference, 4.7 % -> 0.8 %, and
its detector, judged by another seed, never fired). Whatever the preference, a judge that saw
the pairs the proxy was trained on shares its blind spots; one trained on other pairs does
not. So the judge must not share the proxy's training data: by default a reward model trained
on the held-out split (`data_split="test"`, the prompts a snapshot's training split never
holds, since the split is a fixed function of each prompt), refused when it provably shares
them. A reward model whose data is unknown (registered without a snapshot: imported, trained
elsewhere) is the fallback, never preferred. The rule lives here once; the launch checks
(params.py), the runners and the autopilot's evaluate step call it.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedback_app.core.models import Job, ModelVersion, Project
from training.stages import stage_by_kind

JUDGE_HELP = (
    'train a reward model on the snapshot\'s held-out split (data_split "test"): it must not '
    "share the pairs the training reward learnt from"
)
# Which split of its snapshot a reward model learnt from (`metrics["data_split"]`; absent: the
# training split, all a reward job trained on before the choice existed).
DATA_SPLITS = ("train", "test")


@dataclass(frozen=True)
class TrainingData:
    """What a reward model learnt from: one split of a snapshot, and how the snapshot split its
    prompts (`preferences.dataset.in_test_split`: fixed per prompt for a fraction and seed; the
    evaluation set held out when `eval_held_out`)."""

    split: str
    test_fraction: float
    seed: int
    eval_held_out: bool


def disjoint(a: TrainingData | None, b: TrainingData | None) -> bool | None:
    """Whether two reward models learnt from disjoint prompts: True when provably (one split
    each of snapshots split alike: every prompt lands on the same side in every snapshot),
    False when they share or may share them (the same split; snapshots split differently),
    None when either's data is unknown.

    >>> t = TrainingData("train", 0.1, 0, True)
    >>> disjoint(t, TrainingData("test", 0.1, 0, True)), disjoint(t, t), disjoint(t, None)
    (True, False, None)
    >>> disjoint(t, TrainingData("test", 0.2, 0, True))  # split elsewhere: may overlap
    False
    """
    if a is None or b is None:
        return None
    cut = (a.test_fraction, a.seed, a.eval_held_out) == (b.test_fraction, b.seed, b.eval_held_out)
    return a.split != b.split and cut


def training_data(version: ModelVersion) -> TrainingData | None:
    """The data a reward model version learnt from (None: not known, no snapshot)."""
    snap = version.snapshot
    if snap is None:
        return None
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    return TrainingData(
        split=metrics.get("data_split") or "train",
        test_fraction=float(snap.test_fraction),
        seed=int(snap.seed),
        eval_held_out="yardstick" in (snap.counts or {}),
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


def _reward(pk: int | None) -> ModelVersion | None:
    if pk is None:
        return None
    return ModelVersion.objects.select_related("snapshot").filter(pk=pk).first()


def judge_refusal(*, trained_reward: int | None, judge: ModelVersion) -> str | None:
    """Why `judge` may not judge a policy optimised against `trained_reward` (None: it may):
    it is that model, or it learnt from pairs that model learnt from."""
    if trained_reward is None:
        return None
    if judge.pk == trained_reward:
        return (
            f"{judge.name} is the reward model the policy is optimised against; a judge must be "
            f"independent of it: {JUDGE_HELP}"
        )
    trained = _reward(trained_reward)
    if trained is None:
        return None
    ours, theirs = training_data(judge), training_data(trained)
    if disjoint(ours, theirs) is False:
        return (
            f"{judge.name} learnt from the same pairs as {trained.name}, the reward the policy is "
            f"optimised against (the {ours.split} split of snapshot {judge.snapshot_id}, and "
            f"the {theirs.split} split of snapshot {trained.snapshot_id}), so it shares its "
            f"blind spots: {JUDGE_HELP}"
        )
    return None


def judge_pick(*, project: Project, trained_reward: int | None) -> ModelVersion | None:
    """The default judge (None when the project has none that may judge).

    Against no reward: the active reward model, else the newest. Against `trained_reward`: a
    reward model that learnt from other prompts than it (`disjoint`), else one whose data is
    unknown, never one sharing its pairs (another seed on the same snapshot); the active one,
    else the newest, first within each."""
    candidates = (
        ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.REWARD)
        .exclude(pk=trained_reward)
        .select_related("snapshot")
        .order_by("-is_active", "-id")
    )
    trained = _reward(trained_reward)
    if trained is None:
        return candidates.first()
    data = training_data(trained)
    ranked = [(disjoint(training_data(v), data), v) for v in candidates]
    for wanted in (True, None):
        for verdict, version in ranked:
            if verdict is wanted:
                return version
    return None
