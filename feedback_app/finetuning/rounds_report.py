"""The rounds report: per round of the loop, what it cost and what it bought.

For round n: the rankings collected on its tasks and their pairwise agreement; the policy that
generated it (the active one then) with its evaluation against its parent and against the base
model and its KL to the base (stored on the version by the evaluate step, runners.policy_evaluate;
a base model is 0.5 and 0 against itself); in a head-to-head round (candidates of a policy and
of its parent), the people's verdict beside the model-judged one: the human win rate of the newer
policy over the older, with its 95 % interval over rankings (finetuning/human.py), and what the
autopilot did with it (confirmed, rolled back); the reward model trained after it (the newest made
before round n + 1), with its held-out accuracy; and how the round's prompts were chosen
(Round.selection). Read by the rounds page and GET /api/v1/projects/<id>/rounds/.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count

from feedback_app.annotation.models import Candidate, Ranking
from feedback_app.core.models import ModelVersion, Project
from feedback_app.preferences.charts import Chart, line_chart
from feedback_app.preferences.pairs import RankingRow, pairwise_agreement

from .human import NEW, PARENT, HumanWinRate, human_win_rate
from .models import AutopilotRun, Round


@dataclass(frozen=True)
class RoundFigures:
    number: int
    created_at: str
    tasks: int
    rankings: int
    agreement: float | None
    selection_rule: str
    selection_pool: int | None
    policy: int | None
    policy_name: str
    win_rate_vs_parent: float | None
    win_rate_vs_base: float | None
    kl_to_base: float | None
    reward_model: int | None
    reward_model_name: str
    reward_accuracy: float | None
    # The people's head-to-head (None outside a head-to-head round): the newer policy's human
    # win rate over the older, its 95 % interval, the rankings it rests on, the verdict.
    human_win_rate: float | None = None
    human_low: float | None = None
    human_high: float | None = None
    human_rankings: int = 0
    human_verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _policy_figures(
    version: ModelVersion | None,
) -> tuple[float | None, float | None, float | None]:
    if version is None:
        return None, None, None
    m = version.metrics or {}
    if version.parent_id is None:  # the base against itself
        return None, 0.5, 0.0
    return m.get("win_rate"), m.get("win_rate_vs_base"), m.get("kl_to_base")


def _head_to_heads(
    project: Project, pairs: dict[int, tuple[int, int]], rows: dict[int, list[RankingRow]]
) -> dict[int, tuple[HumanWinRate, str]]:
    """Per head-to-head round (`pairs`: round -> (newer, older) policy), the people's win rate
    of the newer and the autopilot's verdict on it. Two queries, none without a head-to-head."""
    if not pairs:
        return {}
    side: dict[int, dict[int, str]] = defaultdict(dict)
    candidates = Candidate.objects.filter(
        task__project=project, task__round__in=list(pairs)
    ).values_list("id", "model_version", "task__round")
    for cid, version, number in candidates:
        new, old = pairs[number]
        if version in (new, old):
            side[number][cid] = NEW if version == new else PARENT
    verdicts = {
        run.next_round: (run.human or {}).get("verdict", "")
        for run in AutopilotRun.objects.filter(project=project, next_round__in=list(pairs))
    }
    return {
        number: (
            human_win_rate([r.groups for r in rows.get(number, [])], side[number]),
            verdicts.get(number, ""),
        )
        for number in pairs
    }


def rounds_report(*, project: Project) -> list[RoundFigures]:
    """Every round of the project, oldest first. Five queries whatever the number of rounds
    (seven when some are head-to-heads)."""
    rounds = list(
        Round.objects.filter(project=project).order_by("number").prefetch_related("model_versions")
    )
    rows_by_round: dict[int, list[RankingRow]] = defaultdict(list)
    values = (
        Ranking.objects.filter(task__project=project, task__gold__isnull=True)
        .order_by("id")
        .values_list("task_id", "annotator_id", "groups", "task__round")
    )
    for task_id, annotator_id, groups, number in values.iterator(chunk_size=2000):
        rows_by_round[number].append(RankingRow(task_id, annotator_id, groups))
    task_counts = dict(
        project.tasks.filter(gold__isnull=True)
        .values("round")
        .annotate(n=Count("id"))
        .values_list("round", "n")
    )
    rewards = list(
        ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.REWARD).order_by(
            "created_at", "id"
        )
    )
    pairs = {}
    for rnd in rounds:
        ids = sorted(v.pk for v in rnd.model_versions.all() if v.kind == ModelVersion.Kind.POLICY)
        if len(ids) == 2:
            pairs[rnd.number] = (ids[1], ids[0])  # the newer version against the older
    people = _head_to_heads(project, pairs, rows_by_round)
    out = []
    for i, rnd in enumerate(rounds):
        following = rounds[i + 1].created_at if i + 1 < len(rounds) else None
        made = [
            r
            for r in rewards
            if r.created_at >= rnd.created_at and (following is None or r.created_at < following)
        ]
        reward = made[-1] if made else None
        policies = sorted(
            (v for v in rnd.model_versions.all() if v.kind == ModelVersion.Kind.POLICY),
            key=lambda v: v.pk,
        )
        policy = policies[-1] if policies else None  # a head-to-head's newer version
        vs_parent, vs_base, kl = _policy_figures(policy)
        rows = rows_by_round.get(rnd.number, [])
        selection = rnd.selection or {}
        human, verdict = people.get(rnd.number, (None, ""))
        out.append(
            RoundFigures(
                number=rnd.number,
                created_at=rnd.created_at.isoformat(),
                tasks=task_counts.get(rnd.number, 0),
                rankings=len(rows),
                agreement=pairwise_agreement(rows) if rows else None,
                selection_rule=selection.get("rule", ""),
                selection_pool=selection.get("pool_size"),
                policy=policy.pk if policy else None,
                policy_name=policy.label if policy else "",  # the one version naming
                win_rate_vs_parent=vs_parent,
                win_rate_vs_base=vs_base,
                kl_to_base=kl,
                reward_model=reward.pk if reward else None,
                reward_model_name=reward.label if reward else "",
                reward_accuracy=(reward.metrics or {}).get("heldout_accuracy") if reward else None,
                human_win_rate=human.win_rate if human else None,
                human_low=human.low if human and human.rankings else None,
                human_high=human.high if human and human.rankings else None,
                human_rankings=human.rankings if human else 0,
                human_verdict=verdict,
            )
        )
    return out


# (field, label, y range) of each plot over rounds; None bounds follow the data.
PLOTS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("rankings", "Rankings collected", 0.0, None),
    ("agreement", "Annotator agreement", 0.0, 1.0),
    ("win_rate_vs_parent", "Win rate against the parent", 0.0, 1.0),
    ("win_rate_vs_base", "Win rate against the base model", 0.0, 1.0),
    ("kl_to_base", "KL to the base (nats per sample)", 0.0, None),
    ("reward_accuracy", "Reward-model held-out accuracy", 0.0, 1.0),
)


# A second line drawn beside a figure's: the people's verdict beside the model-judged one.
BESIDE = {"win_rate_vs_parent": ("human_win_rate", "people (head-to-head)")}


def rounds_charts(figures: list[RoundFigures]) -> list[tuple[str, Chart]]:
    """One line chart over rounds per figure (preferences/charts.py draws them as SVG)."""
    charts = []
    for field, label, low, high in PLOTS:
        fields = [(field, label, "s0")]
        if field in BESIDE:
            fields.append((*BESIDE[field], "s1"))
        series = [
            (
                name,
                css,
                [(f.number, getattr(f, k), f"round {f.number}: {getattr(f, k)}") for f in figures],
            )
            for k, name, css in fields
        ]
        charts.append((label, line_chart(series, x_label="round", y_low=low, y_high=high)))
    return charts
