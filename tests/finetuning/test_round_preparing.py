"""Issue 25: while a project's round is being prepared (its base model set up, a round
generated), the ranking page, the project card and the loop page say so, naming the job, instead
of "You have ranked every task... Thank you!". Admins get the job linked; annotators do not."""

import pytest
from django.urls import reverse

from feedback_app.core.models import Job, Membership, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(make_user):
    """A project with prompts but no round yet, an annotator and an admin."""
    project = Project.objects.create(name="waiting", candidates_per_task=2)
    annotator, admin = make_user("ann"), make_user("adm")
    Membership.objects.create(project=project, user=annotator)
    Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
    return project, annotator, admin


def _page(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_ranking_page_says_a_round_is_being_prepared_not_that_all_is_ranked(client, waiting):
    project, annotator, admin = waiting
    job = Job.objects.create(project=project, kind=Job.Kind.BUILD_BASE)
    url = reverse("annotation:annotate", args=[project.pk])

    page = _page(client, annotator, url)
    assert 'data-testid="round-preparing"' in page and f"job {job.pk}, queued" in page
    assert "the base model is being set up" in page
    assert "Thank you" not in page and "Nothing left to rank" not in page
    assert reverse("finetuning:job", args=[job.pk]) not in page  # annotators: no job link

    assert reverse("finetuning:job", args=[job.pk]) in _page(client, admin, url)


def test_without_a_job_preparing_a_round_the_page_still_says_all_is_ranked(client, waiting):
    project, annotator, _ = waiting
    Job.objects.create(project=project, kind=Job.Kind.GENERATE, status=Job.Status.SUCCEEDED)
    Job.objects.create(project=project, kind=Job.Kind.TRAIN_DPO)  # not a round
    page = _page(client, annotator, reverse("annotation:annotate", args=[project.pk]))
    assert "Nothing left to rank" in page and "round-preparing" not in page


def test_the_project_card_and_the_loop_page_name_the_job_preparing_the_round(client, waiting):
    project, annotator, admin = waiting
    job = Job.objects.create(project=project, kind=Job.Kind.GENERATE, status=Job.Status.RUNNING)
    Job.objects.filter(pk=job.pk).update(progress=0.4)
    link = reverse("finetuning:job", args=[job.pk])

    card = _page(client, annotator, reverse("home"))
    assert "being generated" in card and f"job {job.pk}, 40%" in card and link not in card
    assert link in _page(client, admin, reverse("home"))
    loop = _page(client, admin, reverse("finetuning:loop", args=[project.pk]))
    assert 'data-testid="round-preparing"' in loop and link in loop
