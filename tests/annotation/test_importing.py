import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from feedback_app.annotation import services
from feedback_app.annotation.importing import parse_jsonl
from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import Project

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
]


def jsonl(*objs) -> bytes:
    return "\n".join(json.dumps(o) for o in objs).encode()


GOOD = jsonl(
    {"prompt": "Say hi", "candidates": ["hi", {"text": "hello", "model": "m1"}], "id": "a"},
    {"prompt": CHAT, "candidates": ["4", "5"], "metadata": {"topic": "math"}},
    {"prompt": "No candidates yet"},
)


def test_text_and_chat_prompts_parse_with_their_candidates():
    records = parse_jsonl(GOOD, k=2)
    assert [r.text for r in records] == ["Say hi", "", "No candidates yet"]
    assert records[1].messages == CHAT
    assert records[0].candidates[1].model == "m1"
    assert records[0].external_id == "a"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("not json", "line"),
        (json.dumps({"candidates": ["a", "b"]}), "prompt"),
        (json.dumps({"prompt": "x", "candidates": ["a"]}), "candidates"),
        (json.dumps({"prompt": "x", "candidates": []}), "candidates"),  # no task, silently
        (json.dumps({"prompt": "x", "candidates": ["a", ""]}), "candidates[1]"),
        (
            json.dumps({"prompt": "x", "candidates": ["a", {"text": "b", "modle": "m"}]}),
            "candidates[1]",
        ),
        (json.dumps({"prompt": [{"role": "bot", "content": "x"}]}), "prompt[0].role"),
        (json.dumps({"prompt": [{"role": "user", "content": 3}]}), "prompt[0].content"),
        (json.dumps({"prompt": [{"role": "assistant", "content": "x"}]}), "prompt"),
        (json.dumps({"prompt": "x", "metadata": []}), "metadata"),
        (json.dumps({"prompt": "x", "promt": "y"}), "promt"),
        (json.dumps(["x"]), "line"),
    ],
)
def test_bad_line_is_reported_with_line_number_and_field(line, field):
    data = jsonl({"prompt": "fine", "candidates": ["a", "b"]}).decode() + "\n" + line
    with pytest.raises(InvalidInput) as err:
        parse_jsonl(data.encode(), k=2)
    problem = err.value.problems[0]
    assert (problem.line, problem.field) == (2, field)


def test_same_prompt_twice_in_one_file_is_an_error():
    with pytest.raises(InvalidInput, match="line 2: prompt: same prompt as line 1"):
        parse_jsonl(jsonl({"prompt": "x"}, {"prompt": "x"}), k=2)


def test_file_that_is_not_utf8_is_refused():
    with pytest.raises(InvalidInput, match="file: not UTF-8"):
        parse_jsonl(b"\xff\xfe\x00", k=2)


@pytest.mark.django_db
def test_import_creates_prompts_tasks_and_candidates():
    project = Project.objects.create(name="p", candidates_per_task=2)
    result = services.prompts_import(project=project, records=parse_jsonl(GOOD, k=2))
    assert (result.created, result.tasks, result.existing) == (3, 2, 0)
    assert Task.objects.filter(project=project).count() == 2
    assert list(Candidate.objects.order_by("id").values_list("text", "source", "position")) == [
        ("hi", "", 0), ("hello", "m1", 1), ("4", "", 0), ("5", "", 1),
    ]  # fmt: skip
    assert Prompt.objects.get(external_id="a").tasks.get().target_annotations == 3


@pytest.mark.django_db
def test_reimporting_the_same_file_adds_nothing():
    project = Project.objects.create(name="p", candidates_per_task=2)
    services.prompts_import(project=project, records=parse_jsonl(GOOD, k=2))
    again = services.prompts_import(project=project, records=parse_jsonl(GOOD, k=2))
    assert (again.created, again.existing) == (0, 3)
    assert Prompt.objects.count() == 3 and Candidate.objects.count() == 4


@pytest.mark.django_db
def test_import_command_loads_a_file(tmp_path):
    project = Project.objects.create(name="cmd", candidates_per_task=2)
    path = tmp_path / "p.jsonl"
    path.write_bytes(GOOD)
    call_command("import_prompts", "cmd", str(path))
    assert project.prompts.count() == 3


@pytest.mark.django_db
def test_import_command_with_a_bad_line_changes_nothing(tmp_path):
    Project.objects.create(name="cmd", candidates_per_task=2)
    path = tmp_path / "p.jsonl"
    path.write_bytes(GOOD + b'\n{"prompt": "y", "candidates": ["only one"]}')
    with pytest.raises(CommandError, match="line 4: candidates: this project ranks 2"):
        call_command("import_prompts", "cmd", str(path))
    assert Prompt.objects.count() == 0


@pytest.mark.django_db
def test_upload_page_imports_for_project_admins(client, make_user):
    project = Project.objects.create(name="up", candidates_per_task=2)
    client.force_login(make_user("boss", is_staff=True))
    url = reverse("annotation:import", args=[project.pk])
    response = client.post(url, {"file": SimpleUploadedFile("p.jsonl", GOOD)}, follow=True)
    assert response.status_code == 200
    assert "Imported 3 prompts (2 tasks)" in response.content.decode()
    assert project.prompts.count() == 3


@pytest.mark.django_db
def test_upload_page_with_a_bad_file_names_line_and_field_and_stores_nothing(client, make_user):
    project = Project.objects.create(name="up", candidates_per_task=2)
    client.force_login(make_user("boss", is_staff=True))
    bad = GOOD + b'\n{"prompt": [{"role": "user", "content": ""}]}'
    response = client.post(
        reverse("annotation:import", args=[project.pk]),
        {"file": SimpleUploadedFile("p.jsonl", bad)},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was imported" in body and "line 4" in body and "prompt[0].content" in body
    assert project.prompts.count() == 0


@pytest.mark.django_db
def test_upload_page_is_not_for_annotators(client, alice):
    project = Project.objects.create(name="up", candidates_per_task=2)
    project.memberships.create(user=alice)
    client.force_login(alice)
    url = reverse("annotation:import", args=[project.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"file": SimpleUploadedFile("p.jsonl", GOOD)}).status_code == 404
    assert project.prompts.count() == 0
