"""One runner a job kind: read rows -> call `training/` -> write rows. Called in a worker.

Each takes the Job and its JobReporter and returns the job's outputs; `kinds.py` says which
kind each runs. The `training` modules that load torch and transformers are imported inside
the runners that need them, so the web process (which imports this module through the
registry) never loads them; that is the only reason for an import inside a function here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from django.conf import settings

from feedback_app.annotation.models import Prompt
from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.quality.judgements import task_votes
from feedback_app.preferences.quality.review import disagreements_from_votes
from feedback_app.preferences.review import (
    candidates_to_score,
    review_judgements,
    review_queue_store,
)
from feedback_app.preferences.services import snapshot_build
from feedback_app.preferences.stage_rows import StagePolicy
from training.config import (
    BootstrapConfig,
    DPOTrainConfig,
    EvalConfig,
    GenerateConfig,
    GRPOTrainConfig,
    KTOTrainConfig,
    RewardTrainConfig,
    RLOOTrainConfig,
    SFTTrainConfig,
)
from training.data import read_jsonl

from .params import GENERATE_FIELDS, STAGE_FLAGS, config_part, even_split
from .reporting import JobCancelled, JobReporter
from .rounds import active_reward_model, round_started, round_store, unasked_prompts
from .versions import lineage_root, model_promote, model_register


def _prompt_input(p: Prompt) -> str | list[dict]:
    return p.messages if p.is_chat else p.text


def _read_pairs(snapshot: DatasetSnapshot, split: str) -> list[dict]:
    path = Path(snapshot.path) / f"{split}.jsonl"
    return read_jsonl(path) if path.exists() and path.stat().st_size else []


def _trainable_pairs(rows: list[dict], reporter: JobReporter) -> list[dict]:
    """The pairs TRL accepts: a generated candidate can be empty (the model's first token was
    its end) or the same text as another, and one such pair fails the whole training run."""
    from training.data import PairError, pair_format

    kept = []
    for i, row in enumerate(rows):
        try:
            pair_format(row, i)
        except PairError:
            continue
        kept.append(row)
    if len(kept) < len(rows):
        reporter.log(f"{len(rows) - len(kept)} pairs with an empty or identical side left out")
    return kept


def _out_dir(job: Job, name: str) -> Path:
    path = Path(settings.MODEL_DIR) / str(job.project_id) / f"{name}-job{job.pk}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stopped(result: Any) -> None:
    if getattr(result, "stopped", False) or (isinstance(result, dict) and result.get("stopped")):
        raise JobCancelled()


def _generate_for(
    versions: list[ModelVersion],
    prompts: list[Prompt],
    k: int,
    p: dict,
    reporter: JobReporter,
    low: float,
    high: float,
) -> tuple[list[list[tuple[str, ModelVersion]]], int]:
    """K candidates a prompt, split between the versions; and the completion tokens spent."""
    from training.generate import generate

    # Jobs stored before `split` existed share K evenly, as the checker's default does.
    shares = p.get("split") or even_split(k, len(versions))
    per_prompt: list[list[tuple[str, ModelVersion]]] = [[] for _ in prompts]
    inputs = [_prompt_input(x) for x in prompts]
    tokens = 0
    step = (high - low) / len(versions)
    for i, (version, n) in enumerate(zip(versions, shares, strict=True)):
        reporter.stage(f"Generating {n} candidates x {len(prompts)} prompts with {version.name}")
        config = GenerateConfig(num_samples=n, **{key: p[key] for key in GENERATE_FIELDS})
        result = generate(
            version.weights,
            inputs,
            config,
            progress=reporter.progress_between(low + i * step, low + (i + 1) * step),
        )
        _stopped(result)
        for row, samples in zip(per_prompt, result.samples, strict=True):
            row.extend((s.text, version) for s in samples)
            tokens += sum(s.completion_tokens for s in samples)
    return per_prompt, tokens


RoundPick = tuple[list[Prompt], list[list[tuple[str, ModelVersion]]], int, dict[str, Any]]


def _uncertain_round(
    job: Job, pool: list[Prompt], reward: ModelVersion, versions: list, k: int, reporter
) -> RoundPick:
    """Candidates for the whole pool, scored by `reward`; the `round_size` prompts whose two
    best candidates score closest are kept (training/selection.py)."""
    from training import selection as sel
    from training.reward import RewardScorer

    p = job.params
    if p.get("pool_size") and len(pool) > p["pool_size"]:
        drawn = set(
            sel.select_random([x.pk for x in pool], p["pool_size"], seed=p["seed"] + job.pk)
        )
        pool = [x for x in pool if x.pk in drawn]
    per_prompt, tokens = _generate_for(versions, pool, k, p, reporter, 0.0, 0.8)
    reporter.stage(f"Scoring {len(pool) * k} candidates with {reward.name}", 0.8)
    scorer = RewardScorer(reward.weights)
    scores = {
        prompt.pk: scorer.score_completions([_prompt_input(prompt)] * len(row), [t for t, _ in row])
        for prompt, row in zip(pool, per_prompt, strict=True)
    }
    chosen = set(sel.select_uncertain(scores, p["round_size"]))
    record = sel.selection_record(
        rule=sel.RULE_UNCERTAIN,
        pool=[x.pk for x in pool],
        chosen=sorted(chosen),
        scores=scores,
        reward_model=reward.pk,
    )
    kept = [(pr, row) for pr, row in zip(pool, per_prompt, strict=True) if pr.pk in chosen]
    return [pr for pr, _ in kept], [row for _, row in kept], tokens, record


def _random_round(job: Job, pool: list[Prompt], versions: list, k: int, reporter) -> RoundPick:
    """A seeded draw of `round_size` prompts of the pool, then their candidates."""
    from training import selection as sel

    p = job.params
    seed = p["seed"] + job.pk
    chosen = set(sel.select_random([x.pk for x in pool], p["round_size"], seed=seed))
    prompts = [x for x in pool if x.pk in chosen]
    record = sel.selection_record(
        rule=sel.RULE_RANDOM, pool=[x.pk for x in pool], chosen=sorted(chosen), seed=seed
    )
    per_prompt, tokens = _generate_for(versions, prompts, k, p, reporter, 0.0, 1.0)
    return prompts, per_prompt, tokens, record


def run_generate(job: Job, reporter: JobReporter) -> dict:
    """K candidates a prompt from one policy, or split between two for a head-to-head round.

    With `round_size`, the round asks about that many prompts not asked about before: with the
    project's active selection on and an active reward model, the prompts where the reward
    model is least sure between the two best candidates; otherwise a seeded random draw. The
    rule and its inputs are stored on the round.
    """
    p = job.params
    versions = list(ModelVersion.objects.filter(pk__in=p["model_versions"]))
    versions.sort(key=lambda v: p["model_versions"].index(v.pk))
    prompts = list(Prompt.objects.filter(project=job.project).order_by("id"))
    if p.get("prompt_limit"):
        prompts = prompts[: p["prompt_limit"]]
    if not prompts:
        raise ValueError("the project has no prompts; import some first")
    k = job.project.candidates_per_task
    if p.get("round_size"):
        pool = unasked_prompts(prompts)
        if not pool:
            raise ValueError("every prompt has been asked about; import more for a new round")
        active = job.project.active_selection
        reward = active_reward_model(job.project) if active else None
        if reward is not None and len(pool) > p["round_size"]:
            prompts, per_prompt, tokens, record = _uncertain_round(
                job, pool, reward, versions, k, reporter
            )
        else:
            prompts, per_prompt, tokens, record = _random_round(job, pool, versions, k, reporter)
            if active:
                record["note"] = "no active reward model yet" if reward is None else "pool small"
    else:
        per_prompt, tokens = _generate_for(versions, prompts, k, p, reporter, 0.0, 1.0)
        record = {"rule": "all", "pool_size": len(prompts)}
    rng = random.Random(job.pk)  # interleave the versions so file order says nothing
    for row in per_prompt:
        rng.shuffle(row)
    rnd = round_store(
        project=job.project,
        prompts=prompts,
        candidates=per_prompt,
        versions=versions,
        job=job,
        selection=record,
    )
    reporter.log(f"Round {rnd.number}: {len(prompts)} tasks, {tokens} tokens generated")
    return {
        "round": rnd.number,
        "tasks": len(prompts),
        "completion_tokens": tokens,
        "selection_rule": record["rule"],
    }


BASE_CONFIGS = {
    "default": BootstrapConfig,
    "small": BootstrapConfig.small,
    "tiny": BootstrapConfig.tiny,
}  # the sizes params.BASE_SIZES accepts


def run_build_base(job: Job, reporter: JobReporter) -> dict:
    """Build the offline base model (or take it from the cache, at once), make it the project's
    base policy, and name the first round as the job to launch on success (`outputs["next"]`,
    launched by `services.job_launch_next`) unless a round exists or is being generated."""
    from training.bootstrap import bootstrap_base_model

    p = job.params
    config = BASE_CONFIGS[p["size"]]()
    reporter.stage(f"Building the {p['size']} base model (tokenizer, then pretraining)", 0.0)
    result = bootstrap_base_model(
        settings.BASE_MODEL_CACHE,
        config,
        progress=reporter.progress_between(0.0, 1.0, label="Pretraining"),
    )
    _stopped(result)
    m = result.metrics
    reporter.log(
        f"Base model {_base_origin(result)}: {result.output_dir} "
        f"(held-out perplexity {m['heldout_perplexity_before']:.0f} -> "
        f"{m['heldout_perplexity_after']:.1f})"
    )
    base = ModelVersion.objects.filter(
        project=job.project, name="base", weights=result.output_dir
    ).first() or model_register(
        project=job.project,
        kind=ModelVersion.Kind.POLICY,
        stage=ModelVersion.Stage.BASE,
        name="base",
        weights=result.output_dir,
        job=job,
        metrics=m,
    )
    outputs: dict[str, Any] = {
        "model_version": base.pk,
        "weights": result.output_dir,
        "cached": result.cached,
        "shipped": result.shipped,
    }
    if p["first_round"] is not None and not round_started(job.project):
        outputs["next"] = {"kind": Job.Kind.GENERATE, "params": p["first_round"]}
    return outputs


def _base_origin(result: Any) -> str:
    if result.shipped:
        return "installed from the copy shipped with the code (sha256 checked)"
    return "found in the cache" if result.cached else "built"


def run_build_dataset(job: Job, reporter: JobReporter) -> dict:
    p = dict(job.params)
    test_fraction, seed = p.pop("test_fraction"), p.pop("seed")
    kind = p.pop("kind", DatasetSnapshot.Kind.PAIRS)
    stage = StagePolicy(**{k: p.pop(k) for k in STAGE_FLAGS if k in p})
    reporter.stage(f"Building {DatasetSnapshot.Kind(kind).label}", 0.1)
    snap = snapshot_build(
        project=job.project,
        policy=PairPolicy(**p),
        test_fraction=test_fraction,
        seed=seed,
        job=job,
        note=reporter.log,
        kind=kind,
        stage=stage,
    )
    return {"snapshot": snap.pk, "content_hash": snap.content_hash, **snap.counts}


def run_train_reward(job: Job, reporter: JobReporter) -> dict:
    from training.evaluate import preference_accuracy_reward
    from training.reward import train_reward

    p = job.params
    snapshot = DatasetSnapshot.objects.get(pk=p["snapshot"])
    base = ModelVersion.objects.get(pk=p["base"])
    train, test = (_trainable_pairs(_read_pairs(snapshot, s), reporter) for s in ("train", "test"))
    reporter.stage(f"Training a reward model from {base.name} on {len(train)} pairs", 0.0)
    out = _out_dir(job, "reward")
    result = train_reward(
        base.weights,
        train,
        out,
        RewardTrainConfig.from_dict(config_part(RewardTrainConfig, p)),
        reporter.progress_between(0, 0.9),
    )
    _stopped(result)
    metrics = dict(result.metrics)
    if test:
        reporter.stage(f"Scoring {len(test)} held-out pairs", 0.9)
        metrics.update(
            {f"heldout_{k}": v for k, v in preference_accuracy_reward(out, test).items()}
        )
    version = model_register(
        project=job.project,
        kind=ModelVersion.Kind.REWARD,
        stage=ModelVersion.Stage.REWARD,
        name=f"reward-{job.pk}",
        weights=out,
        parent=None,
        job=job,
        snapshot=snapshot,
        metrics=metrics,
    )
    return {"model_version": version.pk, "metrics": metrics}


def run_train_dpo(job: Job, reporter: JobReporter) -> dict:
    from training.dpo import train_dpo
    from training.evaluate import preference_accuracy_policy

    p = job.params
    snapshot = DatasetSnapshot.objects.get(pk=p["snapshot"])
    policy = ModelVersion.objects.get(pk=p["policy"])
    config = DPOTrainConfig.from_dict(config_part(DPOTrainConfig, p))
    train, test = (_trainable_pairs(_read_pairs(snapshot, s), reporter) for s in ("train", "test"))
    reporter.stage(f"DPO from {policy.name} on {len(train)} pairs", 0.0)
    out = _out_dir(job, "policy")
    result = train_dpo(policy.weights, train, out, config, reporter.progress_between(0, 0.9))
    _stopped(result)
    metrics = dict(result.metrics)
    if test:
        reporter.stage(f"Implicit-reward accuracy on {len(test)} held-out pairs", 0.9)
        acc = preference_accuracy_policy(
            out, policy.weights, test, beta=config.beta, max_length=config.max_length
        )
        metrics.update({f"heldout_{k}": v for k, v in acc.items()})
    version = model_register(
        project=job.project,
        kind=ModelVersion.Kind.POLICY,
        stage=ModelVersion.Stage.DPO,
        name=f"policy-{job.pk}",
        weights=out,
        parent=policy,
        job=job,
        snapshot=snapshot,
        metrics=metrics,
        activate_if_first=False,
    )
    return {"model_version": version.pk, "metrics": metrics}


def _project_prompts(job: Job, limit: int | None) -> list[str | list[dict]]:
    prompts = [_prompt_input(x) for x in Prompt.objects.filter(project=job.project).order_by("-id")]
    return prompts[:limit] if limit else prompts


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

    parent = policy.parent
    reporter.stage(f"{policy.name} against {parent.name}, judged by {reward.name}", low)
    result = compare_policies(
        policy.weights,
        parent.weights,
        prompts,
        judge=reward.weights,
        config=config,
        progress=reporter.progress_between(low, (low + 1.0) / 2),
    )
    _stopped(result)
    summary = {
        "win_rate": result["win_rate"],
        "win_rate_low": result["win_rate_low"],  # its 95 % Wilson interval (training/stats.py)
        "win_rate_high": result["win_rate_high"],
        "kl_to_parent": result["kl"],
        "policy_mean_score": result["policy_mean_score"],
        "parent_mean_score": result["parent_mean_score"],
        "comparisons": result["comparisons"],
        "judge": reward.name,
    }
    base = lineage_root(parent)
    if base.pk == parent.pk:
        summary.update(base=base.pk, win_rate_vs_base=summary["win_rate"], kl_to_base=result["kl"])
    else:
        # Rounds report (finetuning/rounds_report.py): how far the loop has come from the
        # start, not only from the last step; a second comparison on the same prompts.
        reporter.stage(f"{policy.name} against the base {base.name}", (low + 1.0) / 2)
        vs_base = compare_policies(
            policy.weights,
            base.weights,
            prompts,
            judge=reward.weights,
            config=config,
            progress=reporter.progress_between((low + 1.0) / 2, 1.0),
        )
        _stopped(vs_base)
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
        prompts=_project_prompts(job, p.get("prompt_limit")),
        config=EvalConfig.from_dict(config_part(EvalConfig, p)),
        reporter=reporter,
    )
    return {"model_version": policy.pk, **summary}


# --- the policy stages after the reward model: SFT, KTO, online RL (GRPO, RLOO) ---------------

STAGES: dict[str, tuple[str, type]] = {
    "train_sft": (ModelVersion.Stage.SFT, SFTTrainConfig),
    "train_kto": (ModelVersion.Stage.KTO, KTOTrainConfig),
    "train_grpo": (ModelVersion.Stage.GRPO, GRPOTrainConfig),
    "train_rloo": (ModelVersion.Stage.RLOO, RLOOTrainConfig),
}
TRAIN_SHARE = 0.8  # of the progress bar; the evaluation takes the rest


def _prompt_rows(rows: list[dict]) -> list[dict]:
    """Each distinct prompt of a snapshot's rows once, in order: online RL's input."""
    seen: set[str] = set()
    out = []
    for row in rows:
        prompt = row["prompt"] if "prompt" in row else row["messages"][:-1]
        key = json.dumps(prompt, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append({"prompt": prompt})
    return out


def _train_policy_stage(job: Job, reporter: JobReporter) -> dict:
    """Read the snapshot's rows, train, register the new policy (parent, stage, job), evaluate."""
    p = job.params
    stage, config_cls = STAGES[job.kind]
    snapshot = DatasetSnapshot.objects.get(pk=p["snapshot"])
    policy = ModelVersion.objects.get(pk=p["policy"])
    config = config_cls.from_dict(config_part(config_cls, p))
    rows = _read_pairs(snapshot, "train")
    out = _out_dir(job, "policy")
    progress = reporter.progress_between(0, TRAIN_SHARE)
    reward = ModelVersion.objects.get(pk=p["reward_model"]) if "reward_model" in p else None
    if stage in (ModelVersion.Stage.GRPO, ModelVersion.Stage.RLOO):
        from training.online_rl import train_grpo, train_rloo

        train = train_grpo if stage == ModelVersion.Stage.GRPO else train_rloo
        prompts = _prompt_rows(rows)
        reporter.stage(
            f"{stage.upper()} from {policy.name} on {len(prompts)} prompts, "
            f"rewarded by {reward.name}",
            0.0,
        )
        result = train(policy.weights, reward.weights, prompts, out, config, progress)
    else:
        if stage == ModelVersion.Stage.SFT:
            from training.sft import train_sft as train
        else:
            from training.kto import train_kto as train
        reporter.stage(f"{stage.upper()} from {policy.name} on {len(rows)} rows", 0.0)
        result = train(policy.weights, rows, out, config, progress)
    _stopped(result)
    metrics = dict(result.metrics)
    version = model_register(
        project=job.project,
        kind=ModelVersion.Kind.POLICY,
        stage=stage,
        name=f"policy-{job.pk}",
        weights=out,
        parent=policy,
        job=job,
        snapshot=snapshot,
        metrics=metrics,
        activate_if_first=False,
    )
    judge = reward or (
        ModelVersion.objects.filter(project=job.project, kind=ModelVersion.Kind.REWARD)
        .order_by("-is_active", "-id")
        .first()
    )
    evaluation: dict[str, Any] = {}
    if p["eval_prompts"] and judge is not None:
        evaluation = policy_evaluate(
            policy=ModelVersion.objects.select_related("parent").get(pk=version.pk),
            reward=judge,
            prompts=_project_prompts(job, p["eval_prompts"]),
            config=EvalConfig(),
            reporter=reporter,
            low=TRAIN_SHARE,
        )
    elif p["eval_prompts"]:
        reporter.log("no reward model in this project yet: evaluation skipped")
    return {"model_version": version.pk, "metrics": metrics, "evaluation": evaluation}


run_train_sft = run_train_kto = run_train_grpo = run_train_rloo = _train_policy_stage


def run_promote(job: Job, reporter: JobReporter) -> dict:
    version = ModelVersion.objects.get(pk=job.params["model_version"])
    model_promote(version=version)
    reporter.log(f"{version.name} is now the active {version.kind}")
    return {"model_version": version.pk}


# Candidates scored per call of the reward model (and per progress report).
REVIEW_SCORE_CHUNK = 256


def run_review_scores(job: Job, reporter: JobReporter) -> dict:
    """Score the candidates of every pair with a human majority by the reward model, and store
    the pairs it confidently reverses as the project's review queue (quality/review.py)."""
    from training.reward import RewardScorer

    p = job.params
    reward = ModelVersion.objects.get(pk=p["reward"])
    votes = task_votes(review_judgements(project=job.project))
    decided = [
        t for t, tv in votes.items() if any(v.a_better != v.b_better for v in tv.pairs.values())
    ]
    candidates = candidates_to_score(project=job.project, task_ids=decided)
    reporter.stage(f"Scoring {len(candidates)} candidates of {len(decided)} tasks", 0.0)
    scores: dict[int, float] = {}
    if candidates:
        scorer = RewardScorer(reward.weights)
        report = reporter.progress
        for start in range(0, len(candidates), REVIEW_SCORE_CHUNK):
            chunk = candidates[start : start + REVIEW_SCORE_CHUNK]
            values = scorer.score_completions(
                [_prompt_input(c.task.prompt) for c in chunk], [c.text for c in chunk]
            )
            scores.update(zip((c.pk for c in chunk), values, strict=True))
            if report(start + len(chunk), len(candidates), {}):
                raise JobCancelled()
    items = disagreements_from_votes(votes, scores, margin=p["margin"])
    stored = review_queue_store(project=job.project, model_version=reward, items=items)
    reporter.log(f"{stored} confident disagreements of {len(decided)} tasks")
    return {"reward": reward.pk, "scored": len(scores), "tasks": len(decided), "queue": stored}
