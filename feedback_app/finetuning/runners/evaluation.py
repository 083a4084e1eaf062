"""Evaluate a policy against its parent (and the base), and promote a model version."""

from __future__ import annotations

from typing import Any

from feedback_app.core.artifacts import local_model
from feedback_app.core.models import Job, ModelVersion
from training.config import EvalConfig

from ..judges import judge_refusal, trained_against
from ..params import config_part
from ..reporting import JobReporter
from ..versions import lineage_root, model_promote
from .common import project_prompts, stopped


def policy_evaluate(
    *,
    policy: ModelVersion,
    reward: ModelVersion,
    prompts: list,
    config: EvalConfig,
    reporter: JobReporter,
    low: float = 0.0,
) -> dict[str, Any]:
    """The one evaluation of a policy, whatever stage made it: win rate against its parent on
    fresh samples judged by the reward model, and KL to the parent; stored on the version."""
    from training.evaluate import compare_policies

    # Never judged by the reward model it was optimised against (finetuning/judges.py).
    refusal = judge_refusal(trained_reward=trained_against(policy), judge=reward)
    if refusal:
        raise ValueError(f"reward: {refusal}")
    parent = policy.parent
    reporter.stage(f"{policy.name} against {parent.name}, judged by {reward.name}", low)
    result = compare_policies(
        local_model(policy.weights),
        local_model(parent.weights),
        prompts,
        judge=local_model(reward.weights),
        config=config,
        progress=reporter.progress_between(low, (low + 1.0) / 2),
    )
    stopped(result)
    summary = {
        "win_rate": result["win_rate"],
        "win_rate_low": result["win_rate_low"],  # its 95 % Wilson interval (training/stats.py)
        "win_rate_high": result["win_rate_high"],
        "kl_to_parent": result["kl"],
        "kl_to_parent_stderr": result.get("kl_stderr"),
        "policy_mean_score": result["policy_mean_score"],
        "parent_mean_score": result["parent_mean_score"],
        "comparisons": result["comparisons"],
        "length_ratio": result.get("length_ratio"),
        "lc_win_rate": result.get("lc_win_rate"),
        "judge": reward.name,
        "judge_id": reward.pk,
    }
    base = lineage_root(parent)
    if base.pk == parent.pk:
        summary.update(base=base.pk, win_rate_vs_base=summary["win_rate"], kl_to_base=result["kl"])
    else:
        # Rounds report (finetuning/rounds_report.py): how far the loop has come from the
        # start, not only from the last step; a second comparison on the same prompts.
        reporter.stage(f"{policy.name} against the base {base.name}", (low + 1.0) / 2)
        vs_base = compare_policies(
            local_model(policy.weights),
            local_model(base.weights),
            prompts,
            judge=local_model(reward.weights),
            config=config,
            progress=reporter.progress_between((low + 1.0) / 2, 1.0),
        )
        stopped(vs_base)
        summary.update(base=base.pk, win_rate_vs_base=vs_base["win_rate"], kl_to_base=vs_base["kl"])
    version = ModelVersion.objects.get(pk=policy.pk)
    version.metrics = {**version.metrics, **summary}
    version.save(update_fields=["metrics", "updated_at"])
    reporter.log(f"win rate {summary['win_rate']:.2f} over {summary['comparisons']} samples")
    examples = [
        {"prompt": pr, "policy": a, "parent": b}
        for pr, a, b in list(
            zip(result["prompts"], result["policy_samples"], result["parent_samples"], strict=True)
        )[:5]
    ]
    return {**summary, "examples": examples}


def run_evaluate(job: Job, reporter: JobReporter) -> dict:
    p = job.params
    policy = ModelVersion.objects.select_related("parent").get(pk=p["policy"])
    reward = ModelVersion.objects.get(pk=p["reward"])
    summary = policy_evaluate(
        policy=policy,
        reward=reward,
        prompts=project_prompts(job, p.get("prompt_limit")),
        config=EvalConfig.from_dict(config_part(EvalConfig, p)),
        reporter=reporter,
    )
    return {"model_version": policy.pk, **summary}


def run_promote(job: Job, reporter: JobReporter) -> dict:
    version = ModelVersion.objects.get(pk=job.params["model_version"])
    model_promote(version=version)
    reporter.log(f"{version.name} is now the active {version.kind}")
    return {"model_version": version.pk}
