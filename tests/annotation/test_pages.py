import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from feedback_app.annotation import handout, services
from feedback_app.annotation.models import Ranking, Task
from feedback_app.core.models import Project

pytestmark = pytest.mark.django_db


def annotate_url(project):
    return reverse("annotation:annotate", args=[project.pk])


def test_login_page_uses_django_auth_fields(client):
    body = client.get(reverse("login")).content.decode()
    assert 'name="username"' in body and 'name="password"' in body


def test_pages_need_login(client, make_project):
    project = make_project()
    response = client.get(annotate_url(project))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_ranking_page_shows_prompt_and_candidates_labelled_in_display_order(
    client, make_project, alice
):
    project = make_project(k=3, annotators=[alice])
    client.force_login(alice)
    body = client.get(annotate_url(project)).content.decode()
    a = handout.task_assign_next(project=project, annotator=alice)
    shown = [int(x) for x in re.findall(r'data-candidate="(\d+)"', body)]
    assert shown == a.display_order
    labels = re.findall(r'data-label="([A-Z])"', body)
    assert labels == ["A", "B", "C"]
    assert a.task.prompt.text in body
    assert "0 done · 4 remaining" in body


def test_chat_prompt_shows_every_message(client, alice):
    from feedback_app.annotation.importing import check_records

    project = Project.objects.create(name="chat", candidates_per_task=2)
    project.memberships.create(user=alice)
    chat = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "follow-up"},
    ]
    services.prompts_import(
        project=project,
        records=check_records([(1, {"prompt": chat, "candidates": ["x", "y"]})], k=2),
    )
    client.force_login(alice)
    body = client.get(annotate_url(project)).content.decode()
    for m in chat:
        assert m["content"] in body
    assert "role-assistant" in body


def test_plain_form_without_javascript_submits_a_ranking_with_a_tie(client, make_project, alice):
    project = make_project(k=3, annotators=[alice])
    client.force_login(alice)
    client.get(annotate_url(project))
    a = handout.task_assign_next(project=project, annotator=alice)
    ids = a.display_order
    data = {f"rank-{ids[0]}": "2", f"rank-{ids[1]}": "1", f"rank-{ids[2]}": "2", "rationale": "B"}
    response = client.post(reverse("annotation:submit", args=[project.pk, a.task_id]), data)
    assert response.status_code == 302 and response["Location"] == annotate_url(project)
    ranking = Ranking.objects.get()
    assert ranking.groups == [[ids[1]], sorted([ids[0], ids[2]])]
    nxt = client.get(annotate_url(project)).content.decode()
    assert "1 done · 3 remaining" in nxt


def test_form_missing_a_rank_is_shown_again_with_the_field_named(client, make_project, alice):
    project = make_project(k=3, annotators=[alice])
    client.force_login(alice)
    client.get(annotate_url(project))
    a = handout.task_assign_next(project=project, annotator=alice)
    ids = a.display_order
    data = {f"rank-{ids[0]}": "1", f"rank-{ids[1]}": "2"}
    response = client.post(reverse("annotation:submit", args=[project.pk, a.task_id]), data)
    assert response.status_code == 400
    assert f"rank-{ids[2]}" in response.content.decode()
    assert Ranking.objects.count() == 0


def test_skip_button_skips_and_shows_the_next_task(client, make_project, alice):
    project = make_project(annotators=[alice])
    client.force_login(alice)
    client.get(annotate_url(project))
    a = handout.task_assign_next(project=project, annotator=alice)
    response = client.post(reverse("annotation:skip", args=[project.pk, a.task_id]), follow=True)
    assert response.status_code == 200
    assert handout.task_assign_next(project=project, annotator=alice).task_id != a.task_id


def test_annotators_cannot_open_projects_they_are_not_members_of(client, make_project, alice, bob):
    theirs = make_project(name="B", annotators=[bob])
    client.force_login(alice)
    assert client.get(annotate_url(theirs)).status_code == 404
    assert client.get(reverse("annotation:guidelines", args=[theirs.pk])).status_code == 404
    task = theirs.tasks.first()
    url = reverse("annotation:submit", args=[theirs.pk, task.pk])
    assert client.post(url, {}).status_code == 404
    assert client.post(reverse("annotation:skip", args=[theirs.pk, task.pk])).status_code == 404
    assert "B" not in [p.name for p in client.get(reverse("home")).context["projects"]]


def test_annotator_cannot_submit_for_a_task_leased_to_someone_else(
    client, make_project, alice, bob
):
    project = make_project(annotators=[alice, bob])
    a = handout.task_assign_next(project=project, annotator=bob)
    client.force_login(alice)
    data = {f"rank-{i}": str(n) for n, i in enumerate(a.display_order, 1)}
    assert (
        client.post(reverse("annotation:submit", args=[project.pk, a.task_id]), data).status_code
        == 404
    )
    assert Ranking.objects.count() == 0


def test_all_done_page_when_nothing_is_left(client, make_project, alice):
    project = make_project(n_tasks=1, annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    services.task_skip(task_id=a.task_id, annotator=alice)
    client.force_login(alice)
    assert 'data-testid="all-done"' in client.get(annotate_url(project)).content.decode()


def test_guidelines_are_rendered_as_sanitised_markdown(client, alice):
    project = Project.objects.create(name="g", guidelines="**Be kind** <script>alert(1)</script>")
    project.memberships.create(user=alice)
    client.force_login(alice)
    body = client.get(reverse("annotation:guidelines", args=[project.pk])).content.decode()
    assert "<strong>Be kind</strong>" in body and "<script>alert" not in body


def _count(client, method, url, data=None):
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(url, data or {})
    assert response.status_code in (200, 302)
    return len(ctx.captured_queries)


@pytest.mark.parametrize("k,triage", [(2, False), (8, False), (2, True)])
def test_next_task_and_submit_query_counts_are_pinned_whatever_k(
    client, make_project, alice, k, triage, settings
):
    """Pinned: a change here is a change in the hot path; it must not grow with K (no N+1).

    The counts include the SAVEPOINT/RELEASE pair of the test transaction around each
    transaction block. next: session, user, project + membership, live lease, SAVEPOINT, the
    locked task with its prompt, candidates + live leases, lease upsert, RELEASE, progress, and
    the project's unfilled-task count (cached, so the reload does not repeat it). submit:
    session, user, SAVEPOINT, the locked task with project, membership, assignment and ranking,
    INSERT ranking, UPDATE assignment, UPDATE task, RELEASE. Judges' triage (the last task
    marked unsure, handed first) changes the order of the walk, not the count.
    """
    # Database sessions and users whatever the environment (REDIS_URL moves both to Redis).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.CACHE_SIGNED_IN_USERS = False
    project = make_project(k=k, n_tasks=3, annotators=[alice])
    unsure = project.tasks.order_by("id").last()
    if triage:
        project.judge_triage = True
        project.save(update_fields=["judge_triage"])
        Task.objects.filter(pk=unsure.pk).update(judge_unsure=1)
    client.force_login(alice)
    next_queries = _count(client, "get", annotate_url(project))
    a = handout.task_assign_next(project=project, annotator=alice)
    assert (a.task_id == unsure.pk) == triage
    data = {f"rank-{i}": str(n) for n, i in enumerate(a.display_order, 1)}
    submit_queries = _count(
        client, "post", reverse("annotation:submit", args=[project.pk, a.task_id]), data
    )
    reload_queries = _count(client, "get", annotate_url(project))
    assert (next_queries, submit_queries, reload_queries) == (11, 8, 10)


def test_ranking_page_layout_twin_matches_the_other_pages_layout(client, make_project, alice):
    """The ranking page's Jinja2 base (jinja2/base.html) must stay the twin of base.html."""
    project = make_project(annotators=[alice])
    client.force_login(alice)

    def layout(body: str) -> str:
        head = body.split("<main>")[0]
        head = re.sub(r"<title>.*?</title>", "", head)
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", head)

    home = client.get(reverse("home")).content.decode()
    ranking = client.get(annotate_url(project)).content.decode()
    assert 'class="topbar"' in ranking and "Log out" in ranking
    assert layout(ranking) == layout(home)


def test_unfilled_count_is_kept_in_process_briefly_and_forgotten_after_an_import(
    make_project, monkeypatch
):
    from feedback_app.annotation import selectors

    project = make_project(n_tasks=3)
    reads = []
    real_get = selectors.cache.get
    monkeypatch.setattr(selectors.cache, "get", lambda key: reads.append(key) or real_get(key))
    assert selectors.unfilled_task_count(project) == 3
    assert selectors.unfilled_task_count(project) == 3
    assert len(reads) == 1  # the second read came from the process
    selectors.forget_unfilled_task_count(project)
    selectors.unfilled_task_count(project)
    assert len(reads) == 2
