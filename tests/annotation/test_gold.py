"""Gold tasks: imported or marked by an admin, mixed into queues at the project's rate, never
told apart from others, taking no slot, and measuring each annotator against the gold order."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.handout import gold_due
from feedback_app.annotation.importing import parse_jsonl
from feedback_app.annotation.models import Task
from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import Membership, Project
from feedback_app.preferences.selectors import gold_accuracy_by_annotator

from ..api.conftest import client_for

pytestmark = pytest.mark.django_db


def _line(prompt: str, k: int = 3, **extra) -> str:
    return json.dumps(
        {"prompt": prompt, "candidates": [f"{prompt} {j}" for j in range(k)], **extra}
    )


def _project(name="G", *, k=3, overlap=1, gold_rate=0.0, annotators=()) -> Project:
    project = Project.objects.create(
        name=name, candidates_per_task=k, annotations_per_task=overlap, gold_rate=gold_rate
    )
    for user in annotators:
        Membership.objects.create(project=project, user=user)
    return project


def _import(project: Project, lines: list[str]) -> None:
    records = parse_jsonl("\n".join(lines), k=project.candidates_per_task)
    services.prompts_import(project=project, records=records)


def _rank_as_shown(assignment, annotator, *, reverse: bool = False):
    ids = list(assignment.display_order)
    return submit.ranking_submit(
        task_id=assignment.task_id,
        annotator=annotator,
        groups=[[i] for i in (reversed(ids) if reverse else ids)],
    )


# --- import --------------------------------------------------------------------------------


def test_an_imported_gold_order_is_stored_as_candidate_ids_and_the_task_takes_no_slot():
    project = _project()
    _import(project, [_line("plain"), _line("gold", gold=[[2], [0, 1]])])
    plain, gold = Task.objects.filter(project=project).order_by("id")
    by_position = dict(gold.candidates.values_list("position", "pk"))
    assert gold.gold == [[by_position[2]], sorted([by_position[0], by_position[1]])]
    assert gold.target_annotations == 0 and plain.gold is None and plain.target_annotations == 1


@pytest.mark.parametrize(
    ("gold", "field", "words"),
    [
        ([[0], [1]], "gold", "not ranked"),
        ([[0], [1], [2], [3]], "gold[3]", "not in this task"),
        ([[0, 0], [1, 2]], "gold[0]", "twice"),
        ([[0], []], "gold[1]", "non-empty"),
        ("0,1,2", "gold", "candidate indexes"),
        ([[0], ["1"], [2]], "gold[1]", "not a candidate index"),
        ([[True], [1], [2]], "gold[0]", "not a candidate index"),
    ],
)
def test_a_bad_gold_order_is_refused_naming_the_field_and_line(gold, field, words):
    with pytest.raises(InvalidInput) as exc:
        parse_jsonl(_line("fine") + "\n" + _line("bad", gold=gold), k=3)
    (problem,) = exc.value.problems
    assert (problem.field, problem.line) == (field, 2) and words in problem.message


def test_a_gold_order_without_candidates_is_refused():
    with pytest.raises(InvalidInput) as exc:
        parse_jsonl(json.dumps({"prompt": "p", "gold": [[0]]}), k=3)
    assert exc.value.problems[0].field == "gold"


def test_the_api_import_takes_gold_and_refuses_a_bad_one_naming_it(make_user):
    project = _project()
    client = client_for(make_user("root", is_staff=True))
    url = f"/api/v1/projects/{project.pk}/prompts/"
    bad = client.post(url, [json.loads(_line("x", gold=[[0], [1]]))], format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "gold"
    good = client.post(url, [json.loads(_line("x", gold=[[0], [1], [2]]))], format="json")
    assert good.status_code == 201
    assert Task.objects.get(project=project).gold is not None


# --- hand-out ------------------------------------------------------------------------------


def test_gold_tasks_are_mixed_in_at_the_projects_rate(make_user):
    """300 hand-outs at rate 0.2 (times from a seeded generator): the share of gold ones is
    within 4 standard deviations of 0.2 (binomial), and never gold at rate 0."""
    alice = make_user("alice")
    project = _project(gold_rate=0.2, annotators=[alice])
    _import(project, [_line(f"t{i}") for i in range(320)])
    _import(project, [_line(f"g{i}", gold=[[0], [1], [2]]) for i in range(320)])
    rng = random.Random(12)
    now = timezone.now()
    gold = 0
    n = 300
    for _ in range(n):
        now += timedelta(milliseconds=rng.randint(1, 60_000))
        a = handout.task_assign_next(project=project, annotator=alice, now=now)
        gold += a.task.gold is not None
        submit.ranking_submit(
            task_id=a.task_id, annotator=alice, groups=[[i] for i in a.display_order], now=now
        )
    sd = math.sqrt(n * 0.2 * 0.8)
    assert abs(gold - n * 0.2) < 4 * sd, gold


def test_the_gold_draw_follows_the_rate_and_is_off_at_zero():
    now = timezone.now()
    times = [now + timedelta(microseconds=i) for i in range(4000)]
    share = sum(gold_due(project_id=1, annotator_id=2, now=t, rate=0.3) for t in times) / 4000
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)
    assert not any(gold_due(project_id=1, annotator_id=2, now=t, rate=0.0) for t in times)
    assert all(gold_due(project_id=1, annotator_id=2, now=t, rate=1.0) for t in times[:50])


def test_a_gold_task_goes_to_every_annotator_once_and_takes_no_slot(make_user):
    users = [make_user(f"u{i}") for i in range(3)]
    project = _project(overlap=1, gold_rate=1.0, annotators=users)
    _import(project, [_line("ordinary"), _line("gold", gold=[[0], [1], [2]])])
    gold = Task.objects.get(project=project, gold__isnull=False)
    for user in users:
        a = handout.task_assign_next(project=project, annotator=user)
        assert a.task_id == gold.pk
        _rank_as_shown(a, user)
    gold.refresh_from_db()
    assert gold.submitted_count == 0
    # None left for them: the ordinary task (one slot) goes to the first who asks, then none.
    assert handout.task_assign_next(project=project, annotator=users[0]).task.gold is None
    _rank_as_shown(handout.task_assign_next(project=project, annotator=users[0]), users[0])
    assert handout.task_assign_next(project=project, annotator=users[1]) is None
    assert handout.task_assign_next(project=project, annotator=users[0]) is None


def test_a_late_submit_of_a_gold_task_is_accepted(make_user):
    alice = make_user("alice")
    project = _project(gold_rate=1.0, annotators=[alice])
    _import(project, [_line("gold", gold=[[0], [1], [2]])])
    a = handout.task_assign_next(project=project, annotator=alice)
    late = timezone.now() + timedelta(days=1)
    result = submit.ranking_submit(
        task_id=a.task_id, annotator=alice, groups=[[i] for i in a.display_order], now=late
    )
    assert result.created


def _next_queries(client, project) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("annotation:annotate", args=[project.pk]))
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_handing_out_a_gold_task_runs_as_many_queries_as_an_ordinary_one(
    client, make_user, settings
):
    """Pinned beside test_pages' (11): a gold hand-out runs the gold pick instead of the
    ordinary one, so its count (and the page) gives nothing away."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.CACHE_SIGNED_IN_USERS = False
    alice, bob = make_user("alice"), make_user("bob")
    ordinary = _project("O", gold_rate=0.0, annotators=[alice])
    _import(ordinary, [_line("o1"), _line("o2")])
    gold = _project("G", gold_rate=1.0, annotators=[bob])
    _import(gold, [_line("g1", gold=[[0], [1], [2]]), _line("g2")])
    client.force_login(alice)
    plain_count = _next_queries(client, ordinary)
    client.force_login(bob)
    gold_count = _next_queries(client, gold)
    assert Task.objects.get(project=gold, gold__isnull=False).assignments.exists()
    assert plain_count == gold_count == 11


def _shape(html: str) -> list[str]:
    """The page's tags and attribute names, without texts, ids or values."""
    return re.findall(r"<(/?[a-z0-9]+)((?:\s+[a-z-]+)*)", re.sub(r'"[^"]*"', '""', html))


def test_a_gold_task_looks_like_any_other_on_the_page_and_in_the_api(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    ordinary = _project("O", gold_rate=0.0, annotators=[alice])
    _import(ordinary, [_line("same prompt")])
    gold = _project("G", gold_rate=1.0, annotators=[bob])
    _import(gold, [_line("same prompt", gold=[[0], [1], [2]])])
    pages = []
    for user, project in ((alice, ordinary), (bob, gold)):
        client.force_login(user)
        pages.append(client.get(reverse("annotation:annotate", args=[project.pk])).content.decode())
    assert _shape(pages[0]) == _shape(pages[1])
    assert "gold" not in pages[1].lower()
    bodies = [
        client_for(user).get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
        for user, project in ((alice, ordinary), (bob, gold))
    ]

    def keys(value, prefix=""):
        if isinstance(value, dict):
            return {k for key, v in value.items() for k in keys(v, f"{prefix}.{key}")} | {prefix}
        if isinstance(value, list):
            return {k for v in value for k in keys(v, f"{prefix}[]")}
        return {prefix}

    assert keys(bodies[0]) == keys(bodies[1])
    assert "gold" not in json.dumps(bodies[1]).lower()


# --- the admin's page ------------------------------------------------------------------------


def test_an_admin_marks_changes_and_clears_a_gold_order_on_the_page(client, make_user):
    project = _project(overlap=2)
    _import(project, [_line("t")])
    task = Task.objects.get(project=project)
    ids = list(task.candidates.order_by("position").values_list("pk", flat=True))
    client.force_login(make_user("root", is_staff=True))
    url = reverse("annotation:gold", args=[project.pk, task.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url, {f"rank-{ids[0]}": "2", f"rank-{ids[1]}": "1", f"rank-{ids[2]}": "2"}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.gold == [[ids[1]], sorted([ids[0], ids[2]])] and task.target_annotations == 0
    bad = client.post(url, {f"rank-{ids[0]}": "1", f"rank-{ids[1]}": "2"})
    assert bad.status_code == 400 and "not ranked" in bad.content.decode()
    client.post(url, {"clear": "1"})
    task.refresh_from_db()
    assert task.gold is None and task.target_annotations == 2


def test_the_gold_page_is_for_project_admins_only(client, make_user):
    alice = make_user("alice")
    project = _project(annotators=[alice])
    _import(project, [_line("t")])
    task = Task.objects.get(project=project)
    client.force_login(alice)
    url = reverse("annotation:gold", args=[project.pk, task.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"clear": "1"}).status_code == 404
    Membership.objects.filter(user=alice).update(role=Membership.Role.ADMIN)
    assert client.get(url).status_code == 200


# --- gold accuracy -------------------------------------------------------------------------


def test_each_annotators_gold_accuracy_is_their_agreement_with_the_gold_order(make_user):
    good, bad = make_user("good"), make_user("bad")
    project = _project(gold_rate=1.0, annotators=[good, bad])
    _import(project, [_line("g", gold=[[0], [1], [2]])])
    task = Task.objects.get(project=project)
    by_position = dict(task.candidates.values_list("position", "pk"))
    order = [by_position[p] for p in range(3)]
    for user, groups in ((good, [[i] for i in order]), (bad, [[i] for i in reversed(order)])):
        handout.task_assign_next(project=project, annotator=user)
        submit.ranking_submit(task_id=task.pk, annotator=user, groups=groups)
    rates = gold_accuracy_by_annotator(project=project)
    assert (rates[good.pk].hits, rates[good.pk].trials) == (3, 3)
    assert (rates[bad.pk].hits, rates[bad.pk].trials) == (0, 3)


def test_a_skipped_gold_task_is_not_offered_again(make_user):
    alice = make_user("alice")
    project = _project(gold_rate=1.0, annotators=[alice])
    _import(project, [_line("g1", gold=[[0], [1], [2]]), _line("g2", gold=[[2], [1], [0]])])
    first = handout.task_assign_next(project=project, annotator=alice)
    services.task_skip(task_id=first.task_id, annotator=alice)
    second = handout.task_assign_next(project=project, annotator=alice)
    assert second.task_id != first.task_id and second.task.gold is not None
    _rank_as_shown(second, alice)
    assert handout.task_assign_next(project=project, annotator=alice) is None


def test_the_stored_quality_report_shows_each_annotators_gold_accuracy(make_user):
    from feedback_app.preferences import reports

    good, bad = make_user("good"), make_user("bad")
    project = _project(gold_rate=1.0, annotators=[good, bad])
    _import(project, [_line("g", gold=[[0], [1], [2]])])
    task = Task.objects.get(project=project)
    by_position = dict(task.candidates.values_list("position", "pk"))
    order = [by_position[p] for p in range(3)]
    for user, groups in ((good, [[i] for i in order]), (bad, [[i] for i in reversed(order)])):
        handout.task_assign_next(project=project, annotator=user)
        submit.ranking_submit(task_id=task.pk, annotator=user, groups=groups)
    report = reports.quality_refresh(project=project)
    rows = {row["annotator_id"]: row["gold_accuracy"] for row in report.figures["reliability"]}
    assert (rows[good.pk]["hits"], rows[good.pk]["trials"]) == (3, 3)
    assert (rows[bad.pk]["hits"], rows[bad.pk]["trials"]) == (0, 3)
