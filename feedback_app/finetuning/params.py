"""Check and complete job parameters before a job is stored: bad input never reaches a worker.

Each kind's checker returns the parameters the job will run with (defaults filled in, ids
resolved), so a job row says exactly what it did, in the flat shape the checker accepts:
posting a job's stored params back launches the same job. Training settings are validated by the
`training` config dataclasses themselves: one set of rules for the page, the API and the CLI.
Types are strict (a JSON `"false"` is not a boolean) and every number has bounds: the config
fields', `PairPolicy`'s and the few below, which the launch forms read too.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

from django.conf import settings

from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import DatasetSnapshot, ModelVersion, Project
from feedback_app.preferences.dataset import DEFAULT_TEST_FRACTION
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.quality.review import DEFAULT_MARGIN as DEFAULT_REVIEW_MARGIN
from feedback_app.preferences.stage_rows import StagePolicy
from training.config import SEED, ConfigError, EvalConfig, GenerateConfig, Range
from training.data import MIN_ROWS
from training.profile import ProfileError, WorkerProfile
from training.stages import DEVICE_DEFAULTS as DEVICE_DEFAULTS  # the API schema's text reads it
from training.stages import DEVICES, Stage, stage_by_kind

from .judges import JUDGE_HELP, judge_pick, judge_refusal, trained_against

GENERATE_FIELDS = ("temperature", "top_p", "max_new_tokens", "seed", "stop", "batch_size")
# The job parameters that are not a config's or the pair policy's fields.
PROMPT_LIMIT = Range(1, 1_000_000, integer=True)
TEST_FRACTION = Range(0, 1, high_open=True)
# Reward-score gap above which the review queue counts a disagreement (quality/review.py).
REVIEW_MARGIN = Range(0, 100)
SPLIT_SEED = SEED
# A pairs snapshot's weighting of recent rounds (preferences/services.py): a half-life in rounds.
RECENCY_HALF_LIFE = Range(0, 1000, low_open=True)
# Prompts the evaluation after training samples (0: none); EVAL_PROMPT_LIMIT is the default of
# every evaluation (the training stages', the Evaluate job's, the autopilot's evaluate step).
EVAL_PROMPTS = Range(0, 1_000_000, integer=True)
EVAL_PROMPT_LIMIT = 16


def stage_rows(stage: Stage) -> str | None:
    """The kind of snapshot a stage trains on; None: any kind (it reads their prompts)."""
    kind = stage.snapshot_kind
    return None if kind is None else DatasetSnapshot.Kind(kind).value


# A GPU torch can use has its driver's files; without them torch.cuda.is_available() is False.
_GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")


@functools.cache
def _cuda_available() -> bool:
    """torch.cuda.is_available(), asked once a process and only where a GPU driver is present:
    the web process does not import torch otherwise (it took 14 s and 230 MB at load 14)."""
    if not any(os.path.exists(path) for path in _GPU_DRIVER_FILES):
        return False
    import torch

    return torch.cuda.is_available()


def training_device() -> str:
    """Where training jobs run, "cpu" or "cuda": settings.TRAINING_DEVICE, or on "auto" whether
    this process sees a GPU (set it when the workers' machine differs from the web's)."""
    chosen = getattr(settings, "TRAINING_DEVICE", "auto")
    if chosen in DEVICES:
        return chosen
    return "cuda" if _cuda_available() else "cpu"


def stage_defaults(kind: str, device: str | None = None) -> dict[str, Any]:
    """The device-dependent defaults of the training stage of job kind `kind`.

    >>> stage_defaults("train_dpo", "cpu")
    {'epochs': 1.0, 'batch_size': 8, 'max_length': 256}
    """
    stage = stage_by_kind(kind)
    if stage is None:
        raise KeyError(kind)
    return stage.defaults(device or training_device())


def _check_range(allowed: Range, value: Any, field: str) -> Any:
    if not allowed.allows(value):
        raise InvalidInput(Problem(field, f"must be {allowed}"))
    return value


def _config(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return cls.from_dict(data).to_dict()
    except ConfigError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidInput(Problem(field.split(",")[0].strip(), message or str(exc))) from exc
    except TypeError as exc:
        raise InvalidInput(Problem("params", str(exc))) from exc


def check_config(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """`data` as the `training` config class `cls` accepts it (defaults filled in); 400s name
    the field. For settings that hold a config's fields without being a job (the autopilot)."""
    return _config(cls, data)


def config_part(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The entries of stored params that are fields of the config `cls` (for the runner)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in params.items() if k in names}


def _split(params: dict[str, Any], own: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    return {k: v for k, v in params.items() if k in own}, {
        k: v for k, v in params.items() if k not in own
    }


def _id(value: Any, field: str) -> int:
    if isinstance(value, str) and storable.is_id(value):
        return int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= storable.INT64_MAX
    ):
        raise InvalidInput(Problem(field, f"must be an id, got {value!r}"))
    return value


def _version(project: Project, value: Any, field: str, kind: str) -> ModelVersion:
    if value in (None, ""):
        version = ModelVersion.objects.filter(project=project, kind=kind, is_active=True).first()
        if version is None:
            raise InvalidInput(Problem(field, f"no active {kind} model in this project; name one"))
        return version
    version = ModelVersion.objects.filter(project=project, kind=kind, pk=_id(value, field)).first()
    if version is None:
        raise InvalidInput(Problem(field, f"no {kind} model version {value} in this project"))
    return version


def _snapshot(project: Project, value: Any, stage: str | None = None) -> DatasetSnapshot:
    """The named (else the newest usable) snapshot; refused unless `stage` can train on it.

    A stage that reads one kind of rows (`stage_rows`) takes the newest snapshot of that kind
    by default; online RL reads prompts, which every kind has.
    """
    found = stage_by_kind(stage) if stage else None
    wanted = stage_rows(found) if found else None
    qs = DatasetSnapshot.objects.filter(project=project)
    if value in (None, ""):
        snap = (qs.filter(kind=wanted) if wanted else qs).order_by("-id").first()
    else:
        snap = qs.filter(pk=_id(value, "snapshot")).first()
    if snap is None:
        what = f"{DatasetSnapshot.Kind(wanted).label} " if wanted else ""
        raise InvalidInput(
            Problem("snapshot", f"no {what}dataset snapshot in this project; build one first")
        )
    if wanted and snap.kind != wanted:
        raise InvalidInput(
            Problem(
                "snapshot",
                f"snapshot {snap.pk} holds {snap.get_kind_display()}; this stage trains on "
                f"{DatasetSnapshot.Kind(wanted).label}",
            )
        )
    train = snap.counts.get("train", 0)
    if stage is None or wanted == DatasetSnapshot.Kind.PAIRS:
        if not train:
            raise InvalidInput(Problem("snapshot", "this snapshot has no training pairs"))
    elif wanted and train < MIN_ROWS:
        raise InvalidInput(
            Problem("snapshot", f"too few training rows: {train}, at least {MIN_ROWS} needed")
        )
    elif not wanted and snap.counts.get("train_prompts", 0) < MIN_ROWS:
        raise InvalidInput(
            Problem(
                "snapshot",
                f"too few training prompts: {snap.counts.get('train_prompts', 0)}, "
                f"at least {MIN_ROWS} needed",
            )
        )
    return snap


def _limit(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    return _check_range(PROMPT_LIMIT, value, field)


def check_generate(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    own, gen = _split(
        params, {"model_versions", "prompt_limit", "split", "round_size", "pool_size"}
    )
    unknown = sorted(set(gen) - set(GENERATE_FIELDS))
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown parameter"))
    raw = own.get("model_versions") or [None]
    if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
        raise InvalidInput(Problem("model_versions", "one policy, or two for a head-to-head round"))
    versions = [_version(project, v, "model_versions", ModelVersion.Kind.POLICY) for v in raw]
    if len({v.pk for v in versions}) != len(versions):
        raise InvalidInput(Problem("model_versions", "name two different versions"))
    # The project's generation defaults, then the job's own parameters over them.
    defaults = {k: v for k, v in (project.generation or {}).items() if k in GENERATE_FIELDS}
    config = _config(
        GenerateConfig, {"num_samples": project.candidates_per_task, **defaults, **gen}
    )
    clean = {
        "model_versions": [v.pk for v in versions],
        "split": _check_split(own.get("split"), len(versions), project.candidates_per_task),
        "prompt_limit": _limit(own.get("prompt_limit"), "prompt_limit"),
        **{k: config[k] for k in GENERATE_FIELDS},
    }
    # How many prompts not asked about before the round asks about, chosen by the project's
    # selection rule (runners.run_generate); absent: every prompt, as before.
    # `pool_size` caps how many of them active selection samples and scores (a seeded draw).
    size = _limit(own.get("round_size"), "round_size")
    pool = _limit(own.get("pool_size"), "pool_size")
    if pool is not None and size is None:
        raise InvalidInput(Problem("pool_size", "only with round_size"))
    if pool is not None and pool < size:
        raise InvalidInput(Problem("pool_size", "must be at least round_size"))
    if size is not None:
        clean["round_size"] = size
    if pool is not None:
        clean["pool_size"] = pool
    return clean


def even_split(k: int, versions: int) -> list[int]:
    """K candidates shared as evenly as possible, the first versions taking the extra ones."""
    return [k // versions + (1 if i < k % versions else 0) for i in range(versions)]


def _check_split(value: Any, versions: int, k: int) -> list[int]:
    """How many of the K candidates of a task each version writes: at least one each, K in all
    (default: even). The autopilot's head-to-head rounds give the parent a set share."""
    if value in (None, ""):
        return even_split(k, versions)
    if (
        not isinstance(value, list)
        or len(value) != versions
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in value)
        or sum(value) != k
    ):
        raise InvalidInput(
            Problem("split", f"one count a model version, each at least 1, adding up to K={k}")
        )
    return value


STAGE_FLAGS = tuple(f.name for f in dataclasses.fields(StagePolicy))


def check_build_dataset(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    own, policy_fields = _split(
        params, {"test_fraction", "seed", "kind", "recency_half_life", *STAGE_FLAGS}
    )
    kind = own.get("kind", DatasetSnapshot.Kind.PAIRS)
    if kind not in DatasetSnapshot.Kind.values:
        raise InvalidInput(Problem("kind", f"must be one of {list(DatasetSnapshot.Kind.values)}"))
    flags = {k: v for k, v in own.items() if k in STAGE_FLAGS}
    if kind == DatasetSnapshot.Kind.PAIRS and flags:
        raise InvalidInput(Problem(sorted(flags)[0], "only for kind sft or kto"))
    half_life = own.get("recency_half_life")
    if half_life is not None:
        if kind != DatasetSnapshot.Kind.PAIRS:
            raise InvalidInput(Problem("recency_half_life", "only for kind pairs"))
        if isinstance(half_life, bool) or not RECENCY_HALF_LIFE.allows(half_life):
            raise InvalidInput(
                Problem("recency_half_life", f"must be {RECENCY_HALF_LIFE} rounds, or null")
            )
    try:
        policy = PairPolicy(**policy_fields)
        stage = StagePolicy(**flags)
    except TypeError as exc:
        raise InvalidInput(Problem("params", str(exc))) from exc
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidInput(Problem(field, message)) from exc
    fraction = _check_range(
        TEST_FRACTION, own.get("test_fraction", DEFAULT_TEST_FRACTION), "test_fraction"
    )
    seed = _check_range(SPLIT_SEED, own.get("seed", 0), "seed")
    out = {**policy.to_dict(), "test_fraction": float(fraction), "seed": seed}
    if kind != DatasetSnapshot.Kind.PAIRS:
        out.update({"kind": kind, **stage.to_dict()})
    if half_life is not None:  # absent when off: jobs stored before it read the same
        out["recency_half_life"] = float(half_life)
    return out


def check_stage(stage: Stage, project: Project, params: dict[str, Any]) -> dict[str, Any]:
    """Any training stage: its snapshot, the version it starts from, its reward model and the
    independent judge (a stage against a reward model), its evaluation size (if it evaluates),
    then its config over the device's defaults."""
    names = {"snapshot", stage.start, "profile"}
    names |= ({"reward_model", "judge"} if stage.reward_model else set()) | (
        {"eval_prompts"} if stage.evaluates else set()
    )
    own, config = _split(params, names)
    snap = _snapshot(project, own.get("snapshot"), stage.kind)
    start = _version(project, own.get(stage.start), stage.start, ModelVersion.Kind.POLICY)
    out: dict[str, Any] = {"snapshot": snap.pk, stage.start: start.pk}
    checked = _config(stage.config, {**stage.defaults(training_device()), **config})
    if stage.reward_model:
        reward = _version(project, own.get("reward_model"), "reward_model", "reward")
        out["reward_model"] = reward.pk
        out["judge"] = _check_judge(project, own.get("judge"), reward, checked)
    if stage.evaluates:
        eval_prompts = own.get("eval_prompts", EVAL_PROMPT_LIMIT)
        out["eval_prompts"] = _check_range(EVAL_PROMPTS, eval_prompts, "eval_prompts")
    if own.get("profile") not in (None, {}):
        out["profile"] = check_profile(own["profile"])
    return {**out, **checked}


def _check_judge(
    project: Project, value: Any, reward: ModelVersion, config: dict[str, Any]
) -> int | None:
    """The reward model that judges a run against `reward` (its evaluation, its divergence
    detector): the one named, else another of the project's (judges.py); never `reward`.
    None when there is no other: the evaluation is then skipped, and a detector refused."""
    if value in (None, ""):
        judge = judge_pick(project=project, trained_reward=reward.pk)
    else:
        judge = _version(project, value, "judge", ModelVersion.Kind.REWARD)
        refusal = judge_refusal(trained_reward=reward.pk, judge=judge)
        if refusal:
            raise InvalidInput(Problem("judge", refusal))
    if judge is None and config.get("judge_every"):
        raise InvalidInput(
            Problem("judge", f"the divergence detector needs a judge other than {reward.name}: "
                    f"{JUDGE_HELP}")
        )  # fmt: skip
    return judge.pk if judge else None


def check_profile(value: Any) -> dict[str, Any]:
    """A job's overrides of the worker profile (training/profile.py: processes, launcher,
    mixed_precision, accelerate_config, deepspeed_config, threads, lora, lora_r, lora_alpha,
    stall_seconds), checked by the profile's own rules; the worker's environment fills the rest.
    Config files are named as the training workers see them, so only their names are checked
    here when this process cannot see them."""
    if not isinstance(value, dict):
        raise InvalidInput(Problem("profile", "must be an object of worker profile fields"))
    try:
        WorkerProfile.from_env(environ={}, overrides=_without_files(value))
    except ProfileError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidInput(Problem(f"profile.{field.split(',')[0].strip()}", message)) from exc
    except TypeError as exc:
        raise InvalidInput(Problem("profile", str(exc))) from exc
    return dict(value)


def _without_files(value: dict[str, Any]) -> dict[str, Any]:
    """The overrides without the config file paths (checked by the worker that reads them);
    a TRL config name or a text path is all this process can check."""
    out = dict(value)
    for name in ("accelerate_config", "deepspeed_config"):
        if name in out:
            if not isinstance(out[name], str):
                raise InvalidInput(Problem(f"profile.{name}", "must be a name or a path"))
            out.pop(name)
    return out


def check_evaluate(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    own, config = _split(params, {"policy", "reward", "prompt_limit"})
    if own.get("policy") in (None, ""):
        policy = (
            ModelVersion.objects.filter(project=project, kind="policy", parent__isnull=False)
            .order_by("-id")
            .first()
        )
        if policy is None:
            raise InvalidInput(Problem("policy", "no trained policy to evaluate yet"))
    else:
        policy = _version(project, own["policy"], "policy", ModelVersion.Kind.POLICY)
    if policy.parent_id is None:
        raise InvalidInput(Problem("policy", "this version has no parent to compare against"))
    # Never the reward model the policy was optimised against (judges.py).
    trained = trained_against(policy)
    if own.get("reward") in (None, ""):
        reward = judge_pick(project=project, trained_reward=trained)
        if reward is None and trained is not None:
            raise InvalidInput(
                Problem("reward", f"no judge independent of the reward model {policy.name} was "
                        f"optimised against: {JUDGE_HELP}")
            )  # fmt: skip
        if reward is None:
            raise InvalidInput(
                Problem("reward", "train a reward model first: it judges the samples")
            )
    else:
        reward = _version(project, own["reward"], "reward", ModelVersion.Kind.REWARD)
        refusal = judge_refusal(trained_reward=trained, judge=reward)
        if refusal:
            raise InvalidInput(Problem("reward", refusal))
    return {
        "policy": policy.pk,
        "reward": reward.pk,
        "prompt_limit": _limit(own.get("prompt_limit", EVAL_PROMPT_LIMIT), "prompt_limit"),
        **_config(EvalConfig, config),
    }


def check_promote(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    value = params.get("model_version")
    if value in (None, ""):
        raise InvalidInput(Problem("model_version", "name the version to promote"))
    version = ModelVersion.objects.filter(project=project, pk=_id(value, "model_version")).first()
    if version is None:
        raise InvalidInput(Problem("model_version", f"no model version {value} in this project"))
    judged_by = version.metrics.get("judge_id") if isinstance(version.metrics, dict) else None
    trained = trained_against(version)
    if trained is not None and judged_by == trained:
        raise InvalidInput(
            Problem("model_version", f"{version.name} was evaluated by the reward model it was "
                    "optimised against; evaluate it with an independent judge first")
        )  # fmt: skip
    return {"model_version": version.pk}


def check_review_scores(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    """The reward model that scores (default: the active one, else the newest) and the margin."""
    unknown = sorted(set(params) - {"reward", "margin"})
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown parameter"))
    if params.get("reward") in (None, ""):
        reward = (
            ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.REWARD)
            .order_by("-is_active", "-id")
            .first()
        )
        if reward is None:
            raise InvalidInput(Problem("reward", "train a reward model first: it scores the pairs"))
    else:
        reward = _version(project, params["reward"], "reward", ModelVersion.Kind.REWARD)
    margin = params.get("margin", DEFAULT_REVIEW_MARGIN)
    if isinstance(margin, bool) or not isinstance(margin, int | float):
        raise InvalidInput(Problem("margin", f"must be a number {REVIEW_MARGIN}"))
    return {"reward": reward.pk, "margin": float(_check_range(REVIEW_MARGIN, margin, "margin"))}


# Sizes of the offline base model (training.config.BootstrapConfig and its presets).
BASE_SIZES = ("default", "small", "tiny")


def check_build_base(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    """The base model's size, and the generation settings of the round to queue once it is built
    (`first_round`; null: none). The round's policy is the new base, so only its settings are
    checked here; the generate job is checked again in full when it is launched."""
    unknown = sorted(set(params) - {"size", "first_round"})
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown parameter"))
    size = params.get("size", "default")
    if size not in BASE_SIZES:
        raise InvalidInput(Problem("size", f"must be one of {list(BASE_SIZES)}"))
    first_round = params.get("first_round")
    if first_round is not None:
        if not isinstance(first_round, dict):
            raise InvalidInput(Problem("first_round", "must be an object of generation settings"))
        unknown = sorted(set(first_round) - set(GENERATE_FIELDS))
        if unknown:
            raise InvalidInput(Problem(f"first_round.{unknown[0]}", "unknown parameter"))
        try:
            config = _config(
                GenerateConfig, {"num_samples": project.candidates_per_task, **first_round}
            )
        except InvalidInput as exc:
            problems = [Problem(f"first_round.{p.field}", p.message) for p in exc.problems]
            raise InvalidInput(problems) from exc
        first_round = {k: config[k] for k in GENERATE_FIELDS}
    return {"size": size, "first_round": first_round}


def check_import_archive(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    """Never launched by name: an archive import starts from its upload
    (`services.archive_import_launch`, POST /api/v1/projects/import-archive/)."""
    raise InvalidInput(
        Problem("kind", "an archive import starts by uploading the archive to "
                "/api/v1/projects/import-archive/")
    )  # fmt: skip


def check_judge_round(project: Project, params: dict[str, Any]) -> dict[str, Any]:
    """The judge (an AI member of this project) and at most how many tasks it ranks."""
    from feedback_app.core.models import Judge, Membership

    def is_id(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 1

    unknown = sorted(set(params) - {"judge", "limit"})
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown parameter"))
    judge_id = params.get("judge")
    judge = Judge.objects.filter(project=project, pk=judge_id).first() if is_id(judge_id) else None
    if judge is None or not Membership.objects.filter(project=project, user=judge.user).exists():
        raise InvalidInput(Problem("judge", "an AI judge that is a member of this project"))
    limit = params.get("limit")
    if limit is not None and (not is_id(limit) or limit > 100_000):
        raise InvalidInput(Problem("limit", "a whole number from 1 to 100000, or null"))
    return {"judge": judge.pk, "limit": limit}
