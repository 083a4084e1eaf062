"""Demonstrations on the ranking page: offered when the project takes them, posted with the
ranking (both or neither), the edited candidate's text available to the static script."""

from __future__ import annotations

import pytest
from django.urls import reverse

from feedback_app.annotation import handout
from feedback_app.annotation.models import Candidate, Demonstration, Ranking

pytestmark = pytest.mark.django_db


def annotate_url(project):
    return reverse("annotation:annotate", args=[project.pk])


@pytest.fixture
def handed(client, make_project, alice):
    project = make_project(k=3, annotators=[alice])
    project.demonstrations = True
    project.save()
    client.force_login(alice)
    body = client.get(annotate_url(project)).content.decode()
    assignment = handout.task_assign_next(project=project, annotator=alice)
    return project, assignment, body


def test_the_page_offers_an_answer_box_and_each_candidate_to_edit(handed):
    project, assignment, body = handed
    assert 'data-testid="demonstration"' in body and 'name="demonstration"' in body
    for pk in assignment.display_order:
        assert f'<option value="{pk}"' in body and f'data-source-for="{pk}"' in body
    assert "js/demonstrate.js" in body
    assert "<script>" not in body  # static files only, no inline script


def test_a_project_without_demonstrations_shows_no_answer_box(client, make_project, alice):
    project = make_project(k=3, annotators=[alice])
    client.force_login(alice)
    body = client.get(annotate_url(project)).content.decode()
    assert 'name="demonstration"' not in body and "demonstrate.js" not in body


def test_a_ranking_posted_with_an_edit_stores_both(client, handed):
    project, assignment, _ = handed
    ids = assignment.display_order
    data = {f"rank-{i}": str(n) for n, i in enumerate(ids, 1)}
    data |= {"demonstration": " a much better answer", "edited_from": str(ids[0])}
    response = client.post(
        reverse("annotation:submit", args=[project.pk, assignment.task_id]), data
    )
    assert response.status_code == 302
    demo = Demonstration.objects.get()
    assert demo.edited_from_id == ids[0] and demo.text == " a much better answer"
    assert Ranking.objects.count() == 1


def test_a_refused_demonstration_keeps_the_ranking_unsaved_and_names_the_field(client, handed):
    project, assignment, _ = handed
    ids = assignment.display_order
    original = Candidate.objects.get(pk=ids[0])
    data = {f"rank-{i}": str(n) for n, i in enumerate(ids, 1)}
    data |= {"demonstration": original.text, "edited_from": str(ids[0])}  # unchanged
    response = client.post(
        reverse("annotation:submit", args=[project.pk, assignment.task_id]), data
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "<code>text</code>: an edit must change the candidate" in body
    assert not Ranking.objects.exists() and not Demonstration.objects.exists()
