"""The training stages' runners: read the snapshot's rows, call the stage's train function (the
stage table, training/stages.py), register the new model version, measure it.

Every stage runs with `run_stage` (train, register the policy, evaluate it on `eval_prompts`
prompts) unless it needs its own runner (`STAGE_RUNNERS`): the reward model is scored on
held-out pairs, and DPO on its implicit reward's held-out accuracy.

Every stage trains through `_trainer`: the worker profile (environment, then the job's
`profile` params) says how many ranks; one (the default) trains in this process as before,
more run under torchrun/accelerate as a process group (`training.launch`). Rank 0's progress
reaches the job row through the reporter; a cancel kills every rank; a rank that fails raises
`RankFailed`, which fails the job with that rank's message. Where and how it ran is recorded
on the job (`outputs["ran_on"]`) before training starts.
"""

from __future__ import annotations

from typing import Any

from feedback_app.core.artifacts import local_model
from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion
from training.config import EvalConfig
from training.launch import stage_runner as launch_runner
from training.profile import WorkerProfile
from training.stages import Stage, stage_by_kind

from ..jobs import Runner
from ..params import config_part
from ..reporting import JobReporter
from ..versions import model_register
from .common import (
    data_used,
    out_dir,
    project_prompts,
    publish,
    read_rows,
    stopped,
    trainable_pairs,
)
from .evaluation import policy_evaluate
from .guarded import detector_stop, judge_of, stage_inputs, stop_note, train_kwargs

TRAIN_SHARE = 0.8  # of the progress bar; the evaluation takes the rest


def _stage(job: Job) -> Stage:
    stage = stage_by_kind(job.kind)
    if stage is None:
        raise ValueError(f"{job.kind} is not a training stage")
    return stage


def _config(stage: Stage, params: dict[str, Any], profile: WorkerProfile) -> Any:
    """The stage's config: the profile's LoRA defaults, then the job's own values."""
    values = config_part(stage.config, params)
    return stage.config.from_dict({**profile.config_defaults(stage.config), **values})


def _trainer(job: Job, stage: Stage, reporter: JobReporter) -> tuple[Any, WorkerProfile]:
    """The stage's train function as this worker's profile runs it, and the profile; where and
    how the job runs is logged and recorded on the row now, so a failed job shows it too."""
    profile = WorkerProfile.from_env(overrides=job.params.get("profile"))
    ran_on = profile.describe()
    reporter.record(ran_on=ran_on)
    reporter.log(
        f"Training on {ran_on['host']}: {ran_on['launcher']}, {ran_on['processes']} "
        f"process(es), backend {ran_on['backend']}, {ran_on['device']}, "
        f"precision {ran_on['mixed_precision']}"
    )
    return launch_runner(stage.train, profile), profile


def _ran_on(result: Any, profile: WorkerProfile) -> dict[str, Any]:
    metrics = dict(result.metrics)
    return metrics.pop("launch", None) or profile.describe()


def _register(
    job: Job, stage: Stage, out: Any, *, parent: ModelVersion | None, snapshot, metrics: dict
) -> ModelVersion:
    """The version a stage's job made: its kind, stage, parent, job and snapshot. A trained
    policy is never made active by itself (promotion does that); a first reward model is."""
    first = {"activate_if_first": False} if stage.makes == ModelVersion.Kind.POLICY else {}
    return model_register(
        project=job.project, kind=stage.makes, stage=stage.name, name=f"{stage.makes}-{job.pk}",
        weights=publish(job, out), parent=parent, job=job, snapshot=snapshot, metrics=metrics,
        **first,
    )  # fmt: skip


def run_train_reward(job: Job, reporter: JobReporter) -> dict:
    from training.evaluate import preference_accuracy_reward

    stage, p = _stage(job), job.params
    snapshot = DatasetSnapshot.objects.get(pk=p["snapshot"])
    base = ModelVersion.objects.get(pk=p["base"])
    train = trainable_pairs(read_rows(snapshot, "train"), reporter)
    test = read_rows(snapshot, "test")
    # The evaluation set's rows come first, then the gold tasks' pairs (preferences/services.py).
    n_yard, n_gold = snapshot.counts.get("yardstick", 0), snapshot.counts.get("gold", 0)
    yardstick = trainable_pairs(test[:n_yard], reporter)
    gold = trainable_pairs(test[n_yard : n_yard + n_gold], reporter)
    test = trainable_pairs(test[:n_yard] + test[n_yard + n_gold :], reporter)
    reporter.stage(f"{stage.title} from {base.name} on {len(train)} pairs", 0.0)
    out = out_dir(job, "reward")
    trainer, profile = _trainer(job, stage, reporter)
    result = trainer(
        local_model(base.weights),
        train,
        out,
        _config(stage, p, profile),
        reporter.progress_between(0, 0.9),
    )
    stopped(result)
    ran_on = _ran_on(result, profile)
    metrics = {k: v for k, v in result.metrics.items() if k != "launch"}
    if test:
        reporter.stage(f"Scoring {len(test)} held-out pairs", 0.9)
        metrics.update(
            {f"heldout_{k}": v for k, v in preference_accuracy_reward(out, test).items()}
        )
    if yardstick:
        # The gate's and the learning curve's figure: random pairs, never trained on, so
        # active selection's hard prompts do not count against it (finetuning/evalset.py).
        acc = preference_accuracy_reward(out, yardstick)
        metrics.update(yardstick_accuracy=acc["accuracy"], yardstick_pairs=len(yardstick))
    if gold:
        # The admins' expected orders: the gate reads them beside the random pairs.
        acc = preference_accuracy_reward(out, gold)
        metrics.update(gold_accuracy=acc["accuracy"], gold_pairs=len(gold))
    metrics.update(data_used(snapshot, len(train)))
    version = _register(
        job, stage, publish(job, out), parent=None, snapshot=snapshot, metrics=metrics
    )
    return {"model_version": version.pk, "metrics": metrics, "ran_on": ran_on}


def run_train_dpo(job: Job, reporter: JobReporter) -> dict:
    from training.evaluate import preference_accuracy_policy

    stage, p = _stage(job), job.params
    snapshot = DatasetSnapshot.objects.get(pk=p["snapshot"])
    policy = ModelVersion.objects.get(pk=p["policy"])
    train, test = (trainable_pairs(read_rows(snapshot, s), reporter) for s in ("train", "test"))
    reporter.stage(f"DPO from {policy.name} on {len(train)} pairs", 0.0)
    out = out_dir(job, "policy")
    trainer, profile = _trainer(job, stage, reporter)
    config = _config(stage, p, profile)
    result = trainer(
        local_model(policy.weights), train, out, config, reporter.progress_between(0, 0.9)
    )
    stopped(result)
    ran_on = _ran_on(result, profile)
    metrics = {k: v for k, v in result.metrics.items() if k != "launch"}
    if test:
        reporter.stage(f"Implicit-reward accuracy on {len(test)} held-out pairs", 0.9)
        acc = preference_accuracy_policy(
            out, local_model(policy.weights), test, beta=config.beta, max_length=config.max_length
        )
        metrics.update({f"heldout_{k}": v for k, v in acc.items()})
    metrics.update(data_used(snapshot, len(train)))
    version = _register(
        job, stage, publish(job, out), parent=policy, snapshot=snapshot, metrics=metrics
    )
    return {"model_version": version.pk, "metrics": metrics, "ran_on": ran_on}


def run_stage(job: Job, reporter: JobReporter) -> dict:
    """Any policy stage: read the snapshot's rows (its prompts for online RL), train, register
    the new policy (parent, stage, job), evaluate it against its parent.

    A stage against a reward model is judged by the independent judge its launch chose, never
    by that reward model (finetuning/judges.py); a run its divergence detector stopped keeps
    its policy and says why (runners/guarded.py)."""
    stage, p = _stage(job), job.params
    snapshot = DatasetSnapshot.objects.get(pk=p["snapshot"])
    policy = ModelVersion.objects.get(pk=p["policy"])
    inputs = stage_inputs(stage, snapshot, reporter)
    out = out_dir(job, "policy")
    progress = reporter.progress_between(0, TRAIN_SHARE)
    reward = ModelVersion.objects.get(pk=p["reward_model"]) if stage.reward_model else None
    models = [local_model(policy.weights)]
    what = ", ".join(f"{len(rows)} {kind}" for kind, rows in zip(stage.inputs, inputs, strict=True))
    if reward is not None:
        models.append(local_model(reward.weights))
        what += f", rewarded by {reward.name}"
    reporter.stage(f"{stage.name.upper()} from {policy.name} on {what}", 0.0)
    trainer, profile = _trainer(job, stage, reporter)
    config = _config(stage, p, profile)
    extra = train_kwargs(stage, job, snapshot, config)
    if profile.distributed and (len(inputs) > 1 or extra):
        # The rank launcher passes one rows list and no judge (training/launch.py): such a run
        # (online DPO, a run with the divergence detector) trains in this process, and says so.
        reporter.log(f"{stage.title} runs in one process: its inputs do not go to ranks yet")
        trainer = stage.train_function()
    result = trainer(*models, *inputs, out, config, progress, **extra)
    stop = detector_stop(result)
    if stop is None:
        stopped(result)  # a cancel
    else:
        reporter.log(stop_note(stop))
    ran_on = _ran_on(result, profile)
    metrics = {k: v for k, v in result.metrics.items() if k != "launch"}
    metrics.update(data_used(snapshot, len(inputs[0])))
    if reward is not None:
        metrics["optimised_against"] = reward.pk  # the gate never judges with it
    version = _register(job, stage, out, parent=policy, snapshot=snapshot, metrics=metrics)
    if stage.reward_model:
        judge = judge_of(job)
    else:
        judge = (
            ModelVersion.objects.filter(project=job.project, kind=ModelVersion.Kind.REWARD)
            .order_by("-is_active", "-id")
            .first()
        )
    evaluation: dict[str, Any] = {}
    eval_prompts = p.get("eval_prompts", 0)
    if eval_prompts and judge is not None:
        evaluation = policy_evaluate(
            policy=ModelVersion.objects.select_related("parent").get(pk=version.pk),
            reward=judge,
            prompts=project_prompts(job, eval_prompts),
            config=EvalConfig(),
            reporter=reporter,
            low=TRAIN_SHARE,
        )
    elif eval_prompts and reward is not None:
        reporter.log(
            f"no reward model independent of {reward.name} to judge it: evaluation skipped"
        )
    elif eval_prompts:
        reporter.log("no reward model in this project yet: evaluation skipped")
    done = {
        "model_version": version.pk,
        "metrics": metrics,
        "evaluation": evaluation,
        "ran_on": ran_on,
    }
    if stop is not None:
        done.update(stopped_by="divergence detector", stopped=stop_note(stop))
    return done


# The stages that need more than `run_stage` (a stage's one reason to have its own runner).
STAGE_RUNNERS: dict[str, Runner] = {
    "reward": run_train_reward,
    "ensemble": run_train_reward,  # the ensemble's minimum scored on held-out pairs
    "dpo": run_train_dpo,
}


def stage_runner(stage: Stage) -> Runner:
    """The runner of a stage's jobs: its own if it has one, else `run_stage`."""
    return STAGE_RUNNERS.get(stage.name, run_stage)
