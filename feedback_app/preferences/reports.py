"""A project's quality report: read its rows once, compute every figure, store them in one row.

Pages and the API read the stored `QualityReport` and never the rankings (issue 12: "never a
page scanning every ranking per request"). A worker writes it (`tasks.refresh_quality`), after
submits (at most once a project per `QUALITY_REFRESH_SECONDS`, `annotation/quality_refresh.py`)
and when an admin asks. The figures are the pure functions of `quality/`; this module only
turns rows into their inputs and their results into JSON (shapes: docs/quality.md, "Stored
report").
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Length
from django.utils import timezone

from feedback_app.annotation.models import Assignment, Candidate, Ranking, Task
from feedback_app.core.models import ModelVersion, Project
from training.stats import wilson_interval

from . import selectors
from .judge_figures import judges_figure, people_only
from .models import QualityReport
from .quality.agreement import (
    AgreementCounts,
    Coincidences,
    TauCounts,
    coincidences,
    pairwise_counts,
    tau_counts,
)
from .quality.judgements import Judgement, ranks_from_groups
from .quality.leaderboard import comparisons_from_judgements, leaderboard, win_matrix
from .quality.reliability import AnnotatorReliability, Rate, annotator_reliability

# The shape of `QualityReport.figures`; raise it when a figure's JSON changes shape, so pages
# can say "refresh to see this" instead of failing on an old report.
# 2: people's figures leave the AI judges' rankings out; the "judges" figure (issue 23).
REPORT_VERSION = 2
FIGURES = ("agreement", "reliability", "leaderboard", "progress", "reward_models", "judges")
# Bootstrap replicates of the leaderboard's intervals (docs/quality.md, "Intervals").
LEADERBOARD_REPLICATES = 200
# Beyond this many new rankings the page says "N+": counting them all would be the scan the
# stored report exists to avoid.
STALE_COUNT_CAP = 1000


@dataclass(frozen=True)
class ProjectRows:
    """What the figures need of a project, read in a handful of queries."""

    judgements: list[Judgement]
    round_of: dict[int, int]  # task -> round
    last_ranking_id: int
    lengths: dict[int, int]  # candidate -> characters
    model_of: dict[int, tuple[str, int | str]]  # candidate -> ("v", version id) | ("s", source)
    skips: dict[int, int]
    names: dict[int, str]  # annotator id -> username


def gold_orders(*, project: Project) -> dict[int, dict[int, int]]:
    """Gold orders as {task: {candidate: rank}} (`selectors.gold_orders`): with them,
    reliability reports each annotator's gold accuracy and flags those under the bar."""
    return selectors.gold_orders(project=project)


def project_rows(*, project: Project) -> ProjectRows:
    rankings = (
        Ranking.objects.filter(task__project=project)
        .order_by("id")
        .annotate(g=Cast("groups", TextField()), d=Cast("display_order", TextField()))
        .values_list("id", "task_id", "task__round", "annotator_id", "g", "d", "time_spent_ms")
    )
    loads = orjson.loads
    judgements: list[Judgement] = []
    round_of: dict[int, int] = {}
    last = 0
    for rid, task, rnd, annotator, groups, shown, ms in rankings.iterator(chunk_size=5000):
        round_of[task] = rnd
        last = rid
        judgements.append(
            Judgement(
                task, annotator, ranks_from_groups(loads(groups)), tuple(loads(shown)), ms / 1000
            )
        )
    lengths: dict[int, int] = {}
    model_of: dict[int, tuple[str, int | str]] = {}
    candidates = (
        Candidate.objects.filter(task__project=project)
        .annotate(n=Length("text"))
        .values_list("id", "model_version_id", "source", "n")
    )
    for cid, version, source, n in candidates.iterator(chunk_size=5000):
        lengths[cid] = n
        if version is not None:
            model_of[cid] = ("v", version)
        elif source:
            model_of[cid] = ("s", source)
    skips = dict(
        Assignment.objects.filter(task__project=project, status=Assignment.Status.SKIPPED)
        .values("annotator_id")
        .annotate(n=Count("id"))
        .values_list("annotator_id", "n")
    )
    ids = {j.annotator_id for j in judgements} | set(skips)
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    return ProjectRows(judgements, round_of, last, lengths, model_of, skips, names)


def quality_refresh(*, project: Project) -> QualityReport:
    """Compute every figure of `project` from its rows and store them (one row per project)."""
    started = time.monotonic()
    rows = project_rows(project=project)
    people = people_only(rows.judgements, project.pk)
    judges = judges_figure(
        project=project, people=people, gold=(gold := gold_orders(project=project)),
        lengths=rows.lengths,
    )  # fmt: skip
    rows = dataclasses.replace(rows, judgements=people)
    figures = {
        "agreement": agreement_figure(rows),
        "reliability": reliability_figure(rows, gold=gold),
        "leaderboard": leaderboard_figure(rows, project=project),
        "progress": progress_figure(rows),
        "reward_models": reward_models_figure(project=project),
        "judges": judges,
    }
    values = {
        "version": REPORT_VERSION,
        "computed_at": timezone.now(),
        "seconds": time.monotonic() - started,
        "rankings_count": len(rows.judgements),
        "rankings_through": rows.last_ranking_id,
        "figures": figures,
    }
    try:
        with transaction.atomic():
            report, _ = QualityReport.objects.update_or_create(project=project, defaults=values)
    except IntegrityError:  # another refresh created it meanwhile: overwrite theirs
        QualityReport.objects.filter(project=project).update(**values)
        report = QualityReport.objects.get(project=project)
    return report


# --- figures: pure results -> JSON -----------------------------------------------------------


def _agreement_json(p: AgreementCounts, t: TauCounts, a: Coincidences) -> dict:
    return {
        "pairwise": {
            "value": p.value,
            "agreeing": p.agreeing,
            "compared": p.compared,
            "tasks": p.tasks,
            "judgements": p.judgements,
        },
        "tau_b": {
            "value": t.value,
            "comparisons": t.comparisons,
            "undefined": t.undefined,
            "tasks": t.tasks,
            "judgements": t.judgements,
        },
        "alpha": {"value": a.value, "units": a.units, "tasks": a.tasks, "judgements": a.judgements},
    }


def agreement_figure(rows: ProjectRows) -> dict:
    """Per round, and for the project as the sum of its rounds (every count adds up over tasks,
    and a task belongs to one round)."""
    by_round: dict[int, list[Judgement]] = defaultdict(list)
    for j in rows.judgements:
        by_round[rows.round_of[j.task_id]].append(j)
    total = (AgreementCounts(), TauCounts(), Coincidences(np.zeros((0, 0))))
    rounds = []
    for rnd in sorted(by_round):
        js = by_round[rnd]
        counts = (pairwise_counts(js), tau_counts(js), coincidences(js))
        total = tuple(x + y for x, y in zip(total, counts, strict=True))
        rounds.append({"round": rnd, **_agreement_json(*counts)})
    return {"project": _agreement_json(*total), "rounds": rounds}


def _rate(r: Rate) -> dict:
    return {
        "value": r.value,
        "hits": r.hits,
        "trials": r.trials,
        "expected": r.expected,
        "p_value": r.p_value,
    }


def _reliability_row(r: AnnotatorReliability, names: Mapping[int, str]) -> dict:
    return {
        "annotator_id": r.annotator_id,
        "annotator": names.get(r.annotator_id, str(r.annotator_id)),
        "rankings": r.rankings,
        "median_seconds": r.median_seconds,
        "majority_agreement": _rate(r.majority_agreement),
        "gold_accuracy": _rate(r.gold_accuracy),
        "skips": r.skips,
        "skip_rate": r.skip_rate,
        "position_bias": _rate(r.position_bias),
        "length_bias": _rate(r.length_bias),
        "flags": [{"code": f.code, "reason": f.reason} for f in r.flags],
    }


def reliability_figure(rows: ProjectRows, *, gold: Mapping[int, Mapping[int, int]]) -> list[dict]:
    """Per annotator, most in agreement with the others' majority first (no figure: last)."""
    out = annotator_reliability(rows.judgements, skips=rows.skips, gold=gold, lengths=rows.lengths)
    out.sort(key=lambda r: (r.majority_agreement.value is None, -(r.majority_agreement.value or 0)))
    return [_reliability_row(r, rows.names) for r in out]


def _model_names(keys: list[Hashable], project: Project) -> dict[Hashable, dict]:
    versions = {  # the one version naming of pages and API (`ModelVersion.label`)
        v.pk: v.label
        for v in ModelVersion.objects.filter(
            project=project, pk__in=[k[1] for k in keys if k[0] == "v"]
        ).only("pk", "name", "stage")
    }
    return {
        k: {"model_version": k[1], "name": versions.get(k[1], f"version {k[1]}")}
        if k[0] == "v"
        else {"model_version": None, "name": k[1]}
        for k in keys
    }


def leaderboard_figure(rows: ProjectRows, *, project: Project) -> dict:
    """Bradley-Terry strengths with bootstrap intervals, and the head-to-head win matrix."""
    comparisons = comparisons_from_judgements(rows.judgements, rows.model_of)
    board = leaderboard(comparisons, replicates=LEADERBOARD_REPLICATES)
    matrix = win_matrix(comparisons)
    names = _model_names(list(matrix.models), project)
    return {
        "standings": [
            {
                **names[s.model],
                "strength": s.strength,
                "low": s.low,
                "high": s.high,
                "score": s.score,
                "games": s.games,
            }
            for s in board.standings
        ],
        "comparisons": board.comparisons,
        "tasks": board.tasks,
        "replicates": board.replicates,
        "level": board.level,
        "win_matrix": {
            "models": [names[m] for m in matrix.models],
            "wins": matrix.wins.tolist(),
            "games": matrix.games.tolist(),
        },
    }


def progress_figure(rows: ProjectRows) -> list[dict]:
    """Rankings done per annotator, in total and per round, and tasks skipped; most first."""
    per_round: dict[int, Counter[int]] = defaultdict(Counter)
    for j in rows.judgements:
        per_round[j.annotator_id][rows.round_of[j.task_id]] += 1
    ids = set(per_round) | set(rows.skips)
    out = [
        {
            "annotator_id": a,
            "annotator": rows.names.get(a, str(a)),
            "rankings": sum(per_round[a].values()),
            "skips": rows.skips.get(a, 0),
            "by_round": [{"round": r, "rankings": n} for r, n in sorted(per_round[a].items())],
        }
        for a in ids
    ]
    out.sort(key=lambda p: (-p["rankings"], p["annotator"]))
    return out


# The learning curve's bar: below it, or with an interval that still holds chance, the reward
# model is not trusted yet (the page says so above the curve).
TRUSTED_ACCURACY = 0.7


def reward_models_figure(*, project: Project) -> list[dict]:
    """Each reward model's accuracy on held-out human pairs, against the pairs it learnt from.

    From what training stored: `heldout_accuracy`/`heldout_pairs` in the version's metrics
    (finetuning runner of train_reward) and the train split of its snapshot. Ordered by pairs.
    The learning curve: `yardstick_accuracy` (the fixed random evaluation set's pairs, never
    trained on) with its 95 % Wilson interval, against the rankings of its snapshot.
    """
    versions = ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.REWARD).values(
        "pk", "name", "is_active", "metrics", "snapshot__counts", "created_at"
    )
    out = []
    for v in versions:
        metrics = v["metrics"] or {}
        counts = v["snapshot__counts"] or {}
        out.append(
            {
                "model_version": v["pk"],
                "name": v["name"],
                "is_active": v["is_active"],
                "train_pairs": counts.get("train"),
                "heldout_accuracy": metrics.get("heldout_accuracy"),
                "heldout_pairs": metrics.get("heldout_pairs"),
                "rankings": counts.get("rankings"),
                **_yardstick(metrics),
                "created_at": v["created_at"].isoformat(),
            }
        )
    out.sort(key=lambda r: (r["train_pairs"] is None, r["train_pairs"] or 0, r["model_version"]))
    return out


def _yardstick(metrics: dict) -> dict:
    acc, n = metrics.get("yardstick_accuracy"), metrics.get("yardstick_pairs")
    low = high = None
    if isinstance(acc, int | float) and isinstance(n, int) and n > 0:
        low, high = wilson_interval(acc * n, n)
    return {"yardstick_accuracy": acc, "yardstick_pairs": n, "yardstick_low": low,
            "yardstick_high": high}  # fmt: skip


def learning_warning(figure: list[dict]) -> str | None:
    """What the page says before anyone trusts the newest reward model: None when its yardstick
    accuracy is at least `TRUSTED_ACCURACY` and its 95 % interval is clear of chance (0.5)."""
    measured = [r for r in figure if r.get("yardstick_accuracy") is not None]
    if not measured:
        return None
    last = max(measured, key=lambda r: (r["created_at"], r["model_version"]))
    acc, low = last["yardstick_accuracy"], last["yardstick_low"]
    if acc >= TRUSTED_ACCURACY and low is not None and low > 0.5:
        return None
    return (
        f"Do not trust {last['name']} yet: its accuracy on the random yardstick is {acc:.2f} "
        f"(95 % {low or 0:.2f}-{last['yardstick_high'] or 1:.2f}, {last['yardstick_pairs']} "
        f"pairs), not clearly above chance (0.5) or below {TRUSTED_ACCURACY}. Collect more "
        "rankings before its judgements steer training or promotion."
    )


def flagged_annotators(*, project: Project, codes: frozenset[str]) -> list[int]:
    """Annotators the stored report flags with any of `codes` (none without a current report).

    A snapshot policy that discounts flagged annotators reads them here: the report a worker
    wrote last, so a snapshot never waits for the figures to be computed.
    """
    report = QualityReport.objects.filter(project=project, version=REPORT_VERSION).first()
    if report is None:
        return []
    return sorted(
        r["annotator_id"]
        for r in report.figures.get("reliability", [])
        if any(f["code"] in codes for f in r["flags"])
    )


# --- reads for pages and the API -------------------------------------------------------------


@dataclass(frozen=True)
class ReportView:
    """The stored report as pages and the API show it, with how stale it is.

    `report` is loaded without its figures; `figures` holds the ones asked for (all when none
    were named), empty when there is no report or it has an older shape.
    """

    report: QualityReport | None
    new_rankings: int  # rankings since the report (capped at STALE_COUNT_CAP)
    current: bool  # written by this code's REPORT_VERSION
    figures: dict

    @property
    def stale(self) -> bool:
        return self.report is None or self.new_rankings > 0 or not self.current


def quality_report(*, project: Project, figures: tuple[str, ...] = FIGURES) -> ReportView:
    """The stored report (only the figures asked for) and the rankings since.

    Two queries, neither a scan of the rankings. The figures come as JSON text parsed by
    orjson, and only those named: Django's JSONField decoder on the whole report was most of
    a dashboard's time (docs/benchmarks.md, "Quality in the app").
    """
    texts = {f"f_{name}": Cast(KeyTransform(name, "figures"), TextField()) for name in figures}
    report = (
        QualityReport.objects.filter(project=project).defer("figures").annotate(**texts).first()
    )
    if report is None:
        has_any = Ranking.objects.filter(task__project=project)[:STALE_COUNT_CAP].count()
        return ReportView(None, has_any, False, {})
    current = report.version == REPORT_VERSION
    parsed = {}
    if current:
        for name in figures:
            text = getattr(report, f"f_{name}")
            parsed[name] = None if text is None else orjson.loads(text)
    return ReportView(report, rankings_since(project, report.rankings_through), current, parsed)


def rankings_since(project: Project, through: int) -> int:
    """The project's rankings with an id past `through`, counted up to STALE_COUNT_CAP.

    Plain SQL for one reason: `+task_id` keeps SQLite from walking every ranking of the project
    through the task index (5 ms a page at 20,000 rankings; the ORM's join or IN did that);
    it reads the ranking ids past `through` instead, normally none. PostgreSQL's planner
    chooses the primary-key range by itself; the unary plus changes nothing there.
    """
    sql = (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {Ranking._meta.db_table} r "
        f"WHERE r.id > %s AND +r.task_id IN "
        f"(SELECT t.id FROM {Task._meta.db_table} t WHERE t.project_id = %s) LIMIT %s) s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [through, project.pk, STALE_COUNT_CAP])
        return cursor.fetchone()[0]
