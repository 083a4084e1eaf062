"""One regression test per finding of the outside tester (issue 9): each of these was a 500.

Every bad request is a 4xx that names the field, and nothing is stored. The property-based
tests (test_invalid_input.py) generate the same classes of input against every endpoint; these
pin the exact cases that were reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from feedback_app.annotation.models import Candidate, Prompt, Ranking
from feedback_app.core.models import Job, Project
from feedback_app.preferences.models import DeploymentFeedback

ROOT = Path(__file__).resolve().parents[2]
HUGE = "9" * 20  # beyond signed 64 bits
DEEP = "[" * 5000 + "]" * 5000  # the reported 10 kB body


def stored() -> tuple[int, ...]:
    return tuple(
        m.objects.count() for m in (Prompt, Candidate, Ranking, Job, DeploymentFeedback, Project)
    )


def errors_of(response, status: int = 400) -> dict[str, list[dict]]:
    """The API's error body, by field; asserts the status and that every error names a field."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json"
    by_field: dict[str, list[dict]] = {}
    for error in response.json()["errors"]:
        assert error["field"]
        by_field.setdefault(error["field"], []).append(error)
    return by_field


def post_raw(client, url: str, body: str | bytes, content_type: str = "application/json"):
    return client.generic("POST", url, body, content_type=content_type)


# --- 1. JSON nested 5,000 deep: RecursionError -------------------------------------------------


def test_json_nested_5000_deep_is_a_400_naming_the_body_on_every_json_endpoint(world):
    a = world.project_a
    dave = world.client("dave")
    cases = [
        (world.client("alice"), f"/api/v1/tasks/{world.task_a.pk}/ranking/",
         f'{{"ranking": {DEEP}}}'),
        (dave, f"/api/v1/projects/{a.pk}/prompts/", f'[{{"prompt": "x", "metadata": {DEEP}}}]'),
        (dave, "/api/v1/jobs/",
         f'{{"project": {a.pk}, "kind": "build_dataset", "params": {{"seed": {DEEP}}}}}'),
        (dave, f"/api/v1/projects/{a.pk}/snapshots/", f'{{"seed": {DEEP}}}'),
        (world.client("alice"), f"/api/v1/projects/{a.pk}/feedback/", f'{{"metadata": {DEEP}}}'),
        (dave, f"/api/v1/projects/{a.pk}/", f'{{"guidelines": {DEEP}}}'),
    ]  # fmt: skip
    before = stored()
    for client, url, body in cases:
        method = "PATCH" if url.endswith(f"/projects/{a.pk}/") else "POST"
        response = client.generic(method, url, body, content_type="application/json")
        assert list(errors_of(response)) == ["body"], url
    assert stored() == before


def test_jsonl_line_nested_5000_deep_is_a_400_naming_the_line(world):
    url = f"/api/v1/projects/{world.project_a.pk}/prompts/"
    body = f'{{"prompt": "fine"}}\n{{"prompt": "x", "metadata": {DEEP}}}\n'
    before = stored()
    errors = errors_of(post_raw(world.client("dave"), url, body, "application/jsonl"))
    assert errors["line"][0]["line"] == 2 and "nested" in errors["line"][0]["message"]
    assert stored() == before


def test_import_page_lists_a_line_nested_5000_deep_and_stores_nothing(client, make_user):
    project = Project.objects.create(name="deep", candidates_per_task=2)
    client.force_login(make_user("boss", is_staff=True))
    upload = SimpleUploadedFile("p.jsonl", f'{{"prompt": {DEEP}}}\n'.encode())
    before = stored()
    response = client.post(reverse("annotation:import", args=[project.pk]), {"file": upload})
    assert response.status_code == 400
    assert "line 1: <code>line</code>" in response.content.decode()
    assert stored() == before


# --- 2. Unpaired surrogates: UnicodeEncodeError on write ---------------------------------------


@pytest.mark.parametrize(
    ("where", "body", "field"),
    [
        ("import", '[{"prompt": "a \\ud800 b"}]', "prompt"),
        ("import", '[{"prompt": [{"role": "user", "content": "\\udfff"}]}]', "prompt[0].content"),
        ("import", '[{"prompt": "p", "candidates": ["one", "tw\\ud800o", "three"]}]',
         "candidates[1]"),
        ("import", '[{"prompt": "p", "metadata": {"k": ["\\ud800"]}}]', "metadata.k[0]"),
        ("feedback", '{"kind": "thumbs", "source": "app", "prompt": "p", '
         '"response": "\\ud800", "rating": "up"}', "response"),
        ("feedback", '{"kind": "thumbs", "source": "app", "prompt": "p", "response": "r", '
         '"rating": "up", "end_user": "\\udc00"}', "end_user"),
        ("ranking", '{"ranking": RANKING, "rationale": "because \\ud800"}', "rationale"),
    ],
)  # fmt: skip
def test_unpaired_surrogate_escape_is_a_400_naming_the_field(world, where, body, field):
    a = world.project_a
    client, url = {
        "import": (world.client("dave"), f"/api/v1/projects/{a.pk}/prompts/"),
        "feedback": (world.client("alice"), f"/api/v1/projects/{a.pk}/feedback/"),
        "ranking": (world.client("alice"), f"/api/v1/tasks/{world.task_a.pk}/ranking/"),
    }[where]
    ids = sorted(Candidate.objects.filter(task=world.task_a).values_list("pk", flat=True))
    body = body.replace("RANKING", json.dumps([[i] for i in ids]))
    before = stored()
    errors = errors_of(post_raw(client, url, body))
    assert field in errors, errors
    assert stored() == before


# --- 3. NaN and 1e400 in import metadata: IntegrityError on SQLite's JSON check ------------------


def test_non_finite_numbers_in_import_metadata_are_400s_naming_the_path(world):
    url = f"/api/v1/projects/{world.project_a.pk}/prompts/"
    dave = world.client("dave")
    before = stored()
    jsonl = '{"prompt": "a", "metadata": {"x": NaN}}\n{"prompt": "b", "metadata": {"y": [1e400]}}'
    errors = errors_of(post_raw(dave, url, jsonl, "application/jsonl"))
    assert [(e["field"], e["line"]) for es in errors.values() for e in es] == [
        ("metadata.x", 1),
        ("metadata.y[0]", 2),
    ]
    errors = errors_of(post_raw(dave, url, '[{"prompt": "c", "metadata": {"z": -1e400}}]'))
    assert errors["metadata.z"][0]["line"] == 1
    assert stored() == before


# --- 4. Integers beyond the database's range: OverflowError -------------------------------------


def test_integers_beyond_64_bits_in_query_strings_are_400s_naming_the_parameter(world):
    dave = world.client("dave")
    a = world.project_a.pk
    for url, field in [
        (f"/api/v1/rankings/?project={HUGE}", "project"),
        (f"/api/v1/rankings/?annotator={HUGE}", "annotator"),
        (f"/api/v1/jobs/?project={HUGE}", "project"),
        (f"/api/v1/model-versions/?project={HUGE}", "project"),
        (f"/api/v1/projects/{a}/pairs/?format=json&cursor={HUGE}", "cursor"),
        (f"/api/v1/projects/{a}/pairs/?round={HUGE}", "round"),
        (f"/api/v1/audit/?project={HUGE}", "project"),
        (f"/api/v1/audit/?actor={HUGE}", "actor"),
    ]:
        assert field in errors_of(dave.get(url)), url


def test_integers_beyond_64_bits_in_urls_are_404s(world, client):
    a, task = world.project_a.pk, world.task_a.pk
    api = world.client("dave")
    for url in (f"/api/v1/jobs/{HUGE}/", f"/api/v1/projects/{HUGE}/pairs/",
                f"/api/v1/rankings/{HUGE}/", f"/api/v1/projects/{HUGE}/",
                f"/api/v1/audit/{HUGE}/"):  # fmt: skip
        assert "url" in errors_of(api.get(url), 404), url
    assert "url" in errors_of(world.client("alice").post(f"/api/v1/tasks/{HUGE}/skip/"), 404)
    client.force_login(world.alice)
    before = stored()
    for method, url in [
        ("get", f"/projects/{HUGE}/annotate/"),
        ("get", f"/projects/{HUGE}/guidelines/"),
        ("post", f"/projects/{a}/tasks/{HUGE}/ranking/"),
        ("post", f"/projects/{a}/tasks/{HUGE}/skip/"),
        ("post", f"/projects/{HUGE}/tasks/{task}/ranking/"),
    ]:
        assert getattr(client, method)(url).status_code == 404, url
    assert stored() == before


# --- 5. A form field `rank-<5000 digits>`: ValueError in ranks_from_post --------------------------


def test_rank_field_with_an_absurd_candidate_id_is_a_400_naming_it(client, world):
    task = world.task_a
    client.force_login(world.alice)
    url = reverse("annotation:submit", args=[world.project_a.pk, task.pk])
    ids = Candidate.objects.filter(task=task).values_list("pk", flat=True)
    data = {f"rank-{pk}": str(i + 1) for i, pk in enumerate(ids)}
    data["rank-" + "7" * 5000] = "1"
    before = stored()
    # As the page's form sends it (urlencoded; multipart caps a part's headers by itself).
    response = client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert re.search(r"rank-7{10}", response.content.decode())
    assert stored() == before


# --- 6. Request lines over 4 kB under /api/v1/: gunicorn's HTML 414 ------------------------------


def test_over_long_api_url_is_a_json_414_naming_the_url(world):
    response = world.client("dave").get("/api/v1/rankings/?since=" + "2" * 5000)
    assert "url" in errors_of(response, 414)


def gunicorn_commands() -> dict[str, str]:
    """Every place that starts gunicorn, as the text of its command line."""
    compose = (ROOT / "docker-compose.yml").read_text()
    return {
        "Makefile": next(ln for ln in (ROOT / "Makefile").read_text().splitlines()
                         if "bin/gunicorn" in ln),
        "bin/run-local": (ROOT / "bin/run-local").read_text().split(".venv/bin/gunicorn", 1)[1],
        "docker-compose.yml": compose.split('"gunicorn"', 1)[1].split("\n", 1)[0],
        "Dockerfile": (ROOT / "Dockerfile").read_text().split('"gunicorn"', 1)[1],
        "bench/annotate.py": (ROOT / "bench/annotate.py").read_text().split("def gunicorn(", 1)[1],
    }  # fmt: skip


def test_every_gunicorn_command_sets_the_request_line_limit_above_the_apis_own():
    from django.conf import settings

    for where, command in gunicorn_commands().items():
        found = re.search(r"--limit-request-line\W+(\d+)", command)
        assert found, f"{where} starts gunicorn without --limit-request-line"
        # Django must see every URL up to its own limit, to answer the JSON 414 itself.
        assert int(found[1]) > settings.API_MAX_URL_LENGTH + len("DELETE  HTTP/1.1"), where


# --- 7. Job parameters loosely typed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("build_dataset", {"drop_all_bad": "false"}, "drop_all_bad"),
        ("build_dataset", {"drop_unsafe": 1}, "drop_unsafe"),
        ("build_dataset", {"min_votes": 10**20}, "min_votes"),
        ("build_dataset", {"min_agreement": True}, "min_agreement"),
        ("build_dataset", {"seed": 2**70}, "seed"),
        ("train_dpo", {"epochs": 1e6}, "epochs"),
        ("train_dpo", {"batch_size": 10**9}, "batch_size"),
        ("train_reward", {"max_length": 10**12}, "max_length"),
        ("generate", {"max_new_tokens": 10**9}, "max_new_tokens"),
        ("generate", {"seed": 2**70}, "seed"),
        ("generate", {"prompt_limit": 2**64}, "prompt_limit"),
        ("evaluate", {"samples_per_prompt": 10**6}, "samples_per_prompt"),
    ],
)
def test_job_params_out_of_type_or_bounds_are_400s_naming_the_field(world, kind, params, field):
    from feedback_app.finetuning.versions import model_register

    a = world.project_a
    model_register(project=a, kind="reward", name="rm", weights="/nowhere-rm")
    before = stored()
    body = {"project": a.pk, "kind": kind, "params": params}
    response = world.client("dave").post("/api/v1/jobs/", body, format="json")
    assert field in errors_of(response), response.json()
    assert stored() == before


def test_launch_form_refuses_min_votes_beyond_its_bound_and_takes_the_bound_from_the_policy(
    client, make_user, make_project
):
    from feedback_app.finetuning.forms import BuildDatasetForm
    from feedback_app.preferences.pairs import PairPolicy
    from training.config import ranges

    project = make_project(name="form")
    client.force_login(make_user("boss", is_staff=True))
    url = reverse("finetuning:launch", args=[project.pk, "build_dataset"])
    data = {"build_dataset-min_votes": "9" * 20, "build_dataset-min_agreement": "0.5",
            "build_dataset-test_fraction": "0.1", "build_dataset-seed": "0"}  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 400 and not Job.objects.exists()
    assert "min_votes" in response.context_data["forms"]["build_dataset"].errors
    bound = ranges(PairPolicy)["min_votes"]
    assert BuildDatasetForm(project=project).fields["min_votes"].max_value == bound.high


# --- 8. NUL in prompts, guidelines without a size limit, malformed cursors -----------------------


def test_nul_in_a_prompt_or_candidate_is_a_400_naming_the_field(world):
    url = f"/api/v1/projects/{world.project_a.pk}/prompts/"
    before = stored()
    body = [{"prompt": "a\x00b"}, {"prompt": "c", "candidates": ["x", "y\x00", "z"]}]
    errors = errors_of(world.client("dave").post(url, body, format="json"))
    assert errors["prompt"][0]["line"] == 1 and errors["candidates[1]"][0]["line"] == 2
    assert stored() == before


def test_guidelines_longer_than_the_limit_are_a_400_naming_them(world):
    from feedback_app.core.models import MAX_GUIDELINES

    a = world.project_a
    client = world.client("dave")
    url = f"/api/v1/projects/{a.pk}/"
    errors = errors_of(client.patch(url, {"guidelines": "x" * (MAX_GUIDELINES + 1)}, format="json"))
    assert "guidelines" in errors
    ok = client.patch(url, {"guidelines": "x" * MAX_GUIDELINES}, format="json")
    assert ok.status_code == 200


def test_malformed_cursor_is_a_400_naming_it_on_every_paginated_endpoint(world):
    dave = world.client("dave")
    a = world.project_a.pk
    lists = ["/api/v1/rankings/", "/api/v1/jobs/", f"/api/v1/projects/{a}/feedback/",
             f"/api/v1/projects/{a}/snapshots/", "/api/v1/projects/", "/api/v1/audit/"]  # fmt: skip
    # "" and "YQ==" ("a") used to be the first page; "!!" a 404; "cD14" ("p=x") a 500.
    for url in lists:
        for cursor in ("", "YQ==", "!!", "cD14", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5"):
            assert "cursor" in errors_of(dave.get(url, {"cursor": cursor})), (url, cursor)
    for cursor in ("", "abc", "\u00b2", "-1", HUGE):
        url = f"/api/v1/projects/{a}/pairs/"
        response = dave.get(url, {"format": "json", "cursor": cursor})
        assert "cursor" in errors_of(response), cursor
    assert "page_size" in errors_of(dave.get("/api/v1/rankings/", {"page_size": "\u00b2"}))


# --- 9. JSONL strings with raw U+2028, U+2029, U+0085 -------------------------------------------


def test_jsonl_strings_may_hold_line_and_paragraph_separators(world):
    url = f"/api/v1/projects/{world.project_a.pk}/prompts/"
    lines = [
        json.dumps({"prompt": f"one{sep}two"}, ensure_ascii=False)
        for sep in ("\u2028", "\u2029", "\u0085")
    ]
    body = ("\r\n".join(lines) + "\r\n").encode()
    response = post_raw(world.client("dave"), url, body, "application/jsonl")
    assert response.status_code == 201, response.content
    texts = set(Prompt.objects.filter(project=world.project_a).values_list("text", flat=True))
    assert {"one\u2028two", "one\u2029two", "one\u0085two"} <= texts


# Promote is not here: it takes a body (`confirm`) since the guided loop, and reads it.
BODYLESS = [
    ("/api/v1/tasks/{task}/skip/", "alice"),
    ("/api/v1/jobs/{job}/cancel/", "dave"),
    ("/api/v1/jobs/{job}/retry/", "dave"),
    ("/api/v1/projects/{project}/archive/", "dave"),
    ("/api/v1/projects/{project}/restore/", "dave"),
    ("/api/v1/projects/{project}/quality/refresh/", "dave"),
    ("/api/v1/users/{user}/deactivate/", "root"),
    ("/api/v1/users/{user}/reactivate/", "root"),
]


def test_every_step_without_a_body_refuses_an_unreadable_one_and_does_nothing(world):
    """Skip (and every other step that takes no body) used to ignore a body it could not read:
    now it is parsed, and an unreadable one is a 400 naming `body` before anything happens."""
    from feedback_app.annotation.models import Assignment
    from feedback_app.core.models import AuditEvent

    ids = {"task": world.task_a.pk, "job": world.job_a.pk, "version": world.version_a.pk,
           "project": world.project_a.pk, "user": world.alice.pk}  # fmt: skip
    before = (list(Assignment.objects.values_list("status", flat=True).order_by("pk")),
              AuditEvent.objects.count())  # fmt: skip
    for url, role in BODYLESS:
        for body in ('{"reason": ', "[1, 2", "NaN"):
            response = world.client(role).post(
                url.format(**ids), body, content_type="application/json"
            )
            assert response.status_code == 400, (url, body, response.content)
            assert [e["field"] for e in response.json()["errors"]] == ["body"], url
    after = (list(Assignment.objects.values_list("status", flat=True).order_by("pk")),
             AuditEvent.objects.count())  # fmt: skip
    assert after == before
    # No body, or an empty object, still works: the step takes none.
    skip = BODYLESS[0][0].format(**ids)
    assert (
        world.client("alice").post(skip, "{}", content_type="application/json").status_code == 200
    )
