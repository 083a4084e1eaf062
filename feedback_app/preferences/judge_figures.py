"""Each AI judge's calibration as a stored quality figure ("judges", issue 23).

Reads the judges' votes (`annotation.JudgeVote`: each pair's verdict in both orders) and the
people's rankings, and measures every judge against the gold orders and against people
(`quality.calibration.calibrate`); `trusted` says whether its votes may count under the
project's `judge_min_agreement`. People's figures never include a judge's rankings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict

from feedback_app.annotation.models import JudgeVote, Ranking
from feedback_app.core.models import Judge, Project
from feedback_app.workspace.judges import judge_users

from .models import QualityReport
from .pairs import PairPolicy
from .quality.calibration import (
    Calibration,
    JudgeComparison,
    JudgeFigures,
    calibrate,
    judge_flags,
    trusted,
)
from .quality.judgements import Judgement


def judge_comparisons(*, project: Project) -> dict[int, list[JudgeComparison]]:
    """user id of each judge -> its comparisons, from the votes beside its rankings."""
    out: dict[int, list[JudgeComparison]] = {}
    votes = (
        JudgeVote.objects.filter(ranking__task__project=project)
        .order_by("ranking_id")
        .values_list("ranking__annotator_id", "ranking__task_id", "comparisons")
    )
    for user, task, comparisons in votes.iterator(chunk_size=2000):
        out.setdefault(user, []).extend(
            JudgeComparison(task, c["a"], c["b"], c["a_first"], c["b_first"]) for c in comparisons
        )
    return out


def people_only(judgements: Iterable[Judgement], project_id: int) -> list[Judgement]:
    """The rankings of people: the judges' are left out of every people's figure."""
    judges = judge_users(project_id)
    return [j for j in judgements if j.annotator_id not in judges]


def _figures_json(f: JudgeFigures) -> dict:
    return asdict(f)


def judge_calibrations(
    *,
    project: Project,
    people: list[Judgement],
    gold: Mapping[int, Mapping[int, int]],
    lengths: Mapping[int, int],
) -> list[tuple[Judge, Calibration]]:
    """Every judge of the project with its calibration against gold and people."""
    comparisons = judge_comparisons(project=project)
    people_off_gold = [j for j in people if j.task_id not in gold]
    return [
        (
            judge,
            calibrate(
                comparisons.get(judge.user_id, []), people_off_gold, gold=gold, lengths=lengths
            ),
        )
        for judge in Judge.objects.filter(project=project).select_related("user")
    ]


def judges_figure(
    *,
    project: Project,
    people: list[Judgement],
    gold: Mapping[int, Mapping[int, int]],
    lengths: Mapping[int, int],
) -> list[dict]:
    """The "judges" figure: per judge, its figures on gold and on people, trust and flags."""
    out = []
    bar = project.judge_min_agreement
    for judge, cal in judge_calibrations(
        project=project, people=people, gold=gold, lengths=lengths
    ):
        out.append(
            {
                "judge": judge.pk,
                "name": judge.user.get_username(),
                "kind": judge.kind,
                "min_agreement": bar,
                "trusted": trusted(cal, bar),
                "flags": [{"code": f.code, "reason": f.reason} for f in judge_flags(cal, bar)],
                "gold": _figures_json(cal.gold),
                "people": _figures_json(cal.people),
            }
        )
    return out


def trusted_judges(*, project: Project, figure: list[dict] | None) -> set[int]:
    """User ids of the judges whose votes may count, by the stored figure (none without one)."""
    ids = {row["judge"] for row in figure or [] if row["trusted"]}
    return set(Judge.objects.filter(pk__in=ids).values_list("user_id", flat=True))


def vote_weights(
    *,
    project: Project,
    policy: PairPolicy,
    weights: Mapping[int, float] | None,
    judges: set[int] | None = None,
) -> dict[int, float] | None:
    """annotator -> vote weight with the policy's `votes` applied: a judge counts 0 unless the
    policy takes judges and the stored calibration trusts it (then `judge_weight`, or 1 for
    "judges"); under "judges" the people count 0. None: everyone counts 1.
    `judges`: the project's `judge_users`, when the caller read them already."""
    judges = judge_users(project.pk) if judges is None else judges
    if not judges:
        return None if weights is None else dict(weights)
    out = dict(weights or {})
    out.update(dict.fromkeys(judges, 0.0))
    if policy.votes == "people":
        return out
    report = QualityReport.objects.filter(project=project).only("figures").first()
    figure = (report.figures or {}).get("judges") if report is not None else None
    weight = policy.judge_weight if policy.votes == "both" else 1.0
    out.update(dict.fromkeys(trusted_judges(project=project, figure=figure), weight))
    if policy.votes == "judges":
        people = (
            Ranking.objects.filter(task__project=project)
            .exclude(annotator_id__in=judges)
            .values_list("annotator_id", flat=True)
            .distinct()
        )
        out.update(dict.fromkeys(people, 0.0))
    return out
