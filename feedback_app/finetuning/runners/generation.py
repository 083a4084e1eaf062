"""Generate a round: K candidates a prompt from one policy or two (head to head), for every
prompt or for `round_size` unasked ones chosen by the project's selection rule."""

from __future__ import annotations

import random
from typing import Any

from feedback_app.annotation.models import Prompt
from feedback_app.core.artifacts import local_model
from feedback_app.core.models import Job, ModelVersion
from training.config import GenerateConfig

from ..evalset import draw_eval_prompts, eval_share, is_eval_prompt, split_pool
from ..params import GENERATE_FIELDS, even_split
from ..reporting import JobReporter
from ..rounds import active_reward_model, round_store, unasked_prompts
from .common import prompt_input, stopped


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
    from training.engines import generate_with, generation_engine

    # Jobs stored before `split` existed share K evenly, as the checker's default does.
    shares = p.get("split") or even_split(k, len(versions))
    per_prompt: list[list[tuple[str, ModelVersion]]] = [[] for _ in prompts]
    inputs = [prompt_input(x) for x in prompts]
    tokens = 0
    step = (high - low) / len(versions)
    for i, (version, n) in enumerate(zip(versions, shares, strict=True)):
        reporter.stage(f"Generating {n} candidates x {len(prompts)} prompts with {version.name}")
        config = GenerateConfig(num_samples=n, **{key: p[key] for key in GENERATE_FIELDS})
        result = generate_with(
            generation_engine(),
            local_model(version.weights),
            inputs,
            config,
            progress=reporter.progress_between(low + i * step, low + (i + 1) * step),
        )
        stopped(result)
        for row, samples in zip(per_prompt, result.samples, strict=True):
            row.extend((s.text, version) for s in samples)
            tokens += sum(s.completion_tokens for s in samples)
    return per_prompt, tokens


RoundPick = tuple[list[Prompt], list[list[tuple[str, ModelVersion]]], int, dict[str, Any]]


def _uncertain_round(
    job: Job, pool: list[Prompt], reward: ModelVersion, versions: list, k: int, reporter, size: int
) -> RoundPick:
    """Candidates for the whole pool, scored by `reward`; the `round_size` prompts whose two
    best candidates score closest are kept (training/selection.py)."""
    from training import selection as sel
    from training.guards import reward_scorer

    p = job.params
    if p.get("pool_size") and len(pool) > p["pool_size"]:
        drawn = set(
            sel.select_random([x.pk for x in pool], p["pool_size"], seed=p["seed"] + job.pk)
        )
        pool = [x for x in pool if x.pk in drawn]
    per_prompt, tokens = _generate_for(versions, pool, k, p, reporter, 0.0, 0.8)
    reporter.stage(f"Scoring {len(pool) * k} candidates with {reward.name}", 0.8)
    scorer = reward_scorer(local_model(reward.weights))  # a model, or an ensemble's minimum
    scores = {
        prompt.pk: scorer.score_completions([prompt_input(prompt)] * len(row), [t for t, _ in row])
        for prompt, row in zip(pool, per_prompt, strict=True)
    }
    chosen = set(sel.select_uncertain(scores, size))
    record = sel.selection_record(
        rule=sel.RULE_UNCERTAIN,
        pool=[x.pk for x in pool],
        chosen=sorted(chosen),
        scores=scores,
        reward_model=reward.pk,
    )
    kept = [(pr, row) for pr, row in zip(pool, per_prompt, strict=True) if pr.pk in chosen]
    return [pr for pr, _ in kept], [row for _, row in kept], tokens, record


def _random_round(
    job: Job, pool: list[Prompt], versions: list, k: int, reporter, size: int
) -> RoundPick:
    """A seeded draw of `round_size` prompts of the pool, then their candidates."""
    from training import selection as sel

    p = job.params
    seed = p["seed"] + job.pk
    chosen = set(sel.select_random([x.pk for x in pool], size, seed=seed))
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
    from training.engines import generation_engine

    p = job.params
    reporter.record(engine=generation_engine().to_dict())  # which engine generates, on the job
    versions = list(ModelVersion.objects.filter(pk__in=p["model_versions"]))
    versions.sort(key=lambda v: p["model_versions"].index(v.pk))
    prompts = list(Prompt.objects.filter(project=job.project).order_by("id"))
    if p.get("prompt_limit"):
        prompts = prompts[: p["prompt_limit"]]
    if not prompts:
        raise ValueError("the project has no prompts; import some first")
    k = job.project.candidates_per_task
    if p.get("round_size"):
        unasked = unasked_prompts(prompts)
        if not unasked:
            raise ValueError("every prompt has been asked about; import more for a new round")
        # The evaluation set's share is drawn at random; the rule picks only from the rest.
        held, pool = split_pool(unasked)
        if pool:
            held = draw_eval_prompts(held, eval_share(p["round_size"]), seed=p["seed"] + job.pk)
        size = max(p["round_size"] - len(held), 1) if pool else p["round_size"]
        active = job.project.active_selection and bool(pool)
        reward = active_reward_model(job.project) if active else None
        if not pool:  # only evaluation-set prompts are left: a random draw of them
            pool, held = held, []
        if reward is not None and len(pool) > size:
            prompts, per_prompt, tokens, record = _uncertain_round(
                job, pool, reward, versions, k, reporter, size
            )
        else:
            prompts, per_prompt, tokens, record = _random_round(
                job, pool, versions, k, reporter, size
            )
            if active:
                record["note"] = "no active reward model yet" if reward is None else "pool small"
        if held:
            more, tokens_held = _generate_for(versions, held, k, p, reporter, 0.95, 1.0)
            prompts, per_prompt = [*prompts, *held], [*per_prompt, *more]
            tokens += tokens_held
        record["eval_set"] = sorted(x.pk for x in prompts if is_eval_prompt(x))
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
