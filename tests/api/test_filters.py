"""The list filters (api/filters.py, django-filter): they narrow lists, and a filter given twice
or given empty is a 400 naming it rather than a silently wider list."""

from __future__ import annotations

import pytest

from feedback_app.core.models import Job

from .test_bad_requests import errors_of

LISTS = [
    ("/api/v1/rankings/", "project"),
    ("/api/v1/rankings/", "since"),
    ("/api/v1/jobs/", "project"),
    ("/api/v1/jobs/", "kind"),
    ("/api/v1/jobs/", "status"),
    ("/api/v1/model-versions/", "project"),
    ("/api/v1/model-versions/", "kind"),
    ("/api/v1/audit/", "project"),
    ("/api/v1/audit/", "actor"),
    ("/api/v1/audit/", "action"),
    ("/api/v1/audit/", "via"),
    ("/api/v1/audit/", "since"),
    ("/api/v1/audit/", "until"),
]
GOOD = {
    "project": "1",
    "since": "2020-01-01T00:00:00Z",
    "kind": "policy",
    "status": "queued",
    "actor": "1",
    "action": "job.launch",
    "via": "api",
    "until": "2020-01-01T00:00:00Z",
}


@pytest.mark.parametrize(("url", "name"), LISTS)
def test_a_filter_given_twice_is_a_400_naming_it(world, url, name):
    good = GOOD[name] if not (url.endswith("/jobs/") and name == "kind") else "generate"
    assert world.client("dave").get(url, {name: good}).status_code == 200
    response = world.client("dave").get(url, {name: [good, good]})
    assert [e["message"] for e in errors_of(response)[name]] == ["given more than once"]


@pytest.mark.parametrize(("url", "name"), LISTS)
def test_a_filter_given_empty_is_a_400_naming_it(world, url, name):
    response = world.client("dave").get(url, {name: ""})
    assert [e["message"] for e in errors_of(response)[name]] == ["must not be empty"]


def test_the_job_filters_narrow_the_list(world):
    a = world.project_a
    Job.objects.create(project=a, kind="generate", status="failed")
    client = world.client("dave")

    def ids(**query) -> set[int]:
        response = client.get("/api/v1/jobs/", query)
        assert response.status_code == 200, response.json()
        return {job["id"] for job in response.json()["results"]}

    every = set(Job.objects.filter(project=a).values_list("pk", flat=True))
    assert ids() == ids(project=a.pk) == every and len(every) == 2
    assert ids(kind="generate", status="failed") == set(
        Job.objects.filter(kind="generate").values_list("pk", flat=True)
    )
    assert ids(kind="generate", status="queued") == set()
    assert ids(project=world.project_b.pk) == set()  # not theirs: nothing, not an error


def test_the_ranking_filters_narrow_the_list(world):
    client = world.client("dave")
    ranking = world.ranking_a
    query = {"project": world.project_a.pk, "annotator": world.alice.pk, "round": 1}
    response = client.get("/api/v1/rankings/", query)
    assert [r["id"] for r in response.json()["results"]] == [ranking.pk]
    later = ranking.created_at.replace(year=ranking.created_at.year + 1).isoformat()
    assert client.get("/api/v1/rankings/", {"since": later}).json()["results"] == []


def test_a_detail_url_ignores_the_list_filters(world):
    url = f"/api/v1/jobs/{world.job_a.pk}/"
    assert world.client("dave").get(url, {"project": "9" * 30}).status_code == 200
