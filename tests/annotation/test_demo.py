import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from feedback_app.annotation import demo
from feedback_app.annotation.models import Assignment
from feedback_app.core.models import AuditEvent, Job, ModelVersion, Project
from feedback_app.finetuning import versions

pytestmark = pytest.mark.django_db


def test_demo_bootstrap_serves_the_hand_written_demo_at_once_and_queues_the_base_model_build(
    settings, tmp_path, capsys, monkeypatch, client
):
    """Issue 13: `make run` answers before the base model exists. The command builds nothing
    (the model cache stays empty, no model version) and leaves one queued `build_base` job,
    while the hand-written demo's ranking page already hands out a task."""
    settings.VAR_DIR = tmp_path
    settings.BASE_MODEL_CACHE = tmp_path / "base-model"
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    call_command("bootstrap_demo", "--model-size", "tiny", "--url", "http://127.0.0.1:8123/")
    out = capsys.readouterr().out
    password = (tmp_path / "demo-password").read_text().strip()
    assert f"Password  {password}" in out and "http://127.0.0.1:8123/" in out
    users = get_user_model().objects
    assert users.get(username="demo-admin").is_staff
    assert users.get(username="annotator-3").check_password(password)
    hand = Project.objects.get(name=demo.PROJECT)
    assert hand.tasks.count() == 30
    loop = Project.objects.get(name=demo.LOOP_PROJECT)
    job = Job.objects.get(project=loop)
    assert (job.kind, job.status) == ("build_base", "queued")
    assert job.params["size"] == "tiny" and job.params["first_round"]["max_new_tokens"] == 40
    assert f"http://127.0.0.1:8123/jobs/{job.pk}/" in out
    assert not ModelVersion.objects.filter(project=loop).exists()
    assert not settings.BASE_MODEL_CACHE.exists()

    login = client.post("/accounts/login/", {"username": "annotator-1", "password": password})
    assert login.status_code == 302
    page = client.get(f"/projects/{hand.pk}/annotate/")
    assert page.status_code == 200
    assert (
        Assignment.objects.filter(task__project=hand, annotator__username="annotator-1").count()
        == 1
    )
    assert "data-candidate=" in page.content.decode()

    client.force_login(users.get(username="demo-admin"))
    body = client.get(f"/projects/{loop.pk}/loop/").content.decode()
    assert f'href="/jobs/{job.pk}/"' in body and "Build the offline base model" in body
    launched = AuditEvent.objects.get(action="job.launch")  # the command's, from the command line
    assert (launched.via, launched.project, launched.data["job"]) == ("cli", loop, job.pk)

    call_command("bootstrap_demo", "--model-size", "tiny")  # a second `make run`
    assert (tmp_path / "demo-password").read_text().strip() == password
    assert Job.objects.count() == 1 and hand.tasks.count() == 30
    assert users.filter(username__startswith="annotator-").count() == 3


def test_demo_bootstrap_once_the_base_model_exists_queues_round_one_and_then_nothing(
    settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    call_command("bootstrap_demo", "--model-size", "tiny")
    loop = Project.objects.get(name=demo.LOOP_PROJECT)
    build = Job.objects.get(project=loop)
    versions.model_register(project=loop, kind="policy", name="base", weights=str(tmp_path))
    Job.objects.filter(pk=build.pk).update(status=Job.Status.SUCCEEDED)  # as its worker would

    call_command("bootstrap_demo", "--model-size", "tiny")
    call_command("bootstrap_demo", "--model-size", "tiny")

    assert list(Job.objects.filter(project=loop).values_list("kind", "status").order_by("id")) == [
        ("build_base", "succeeded"),
        ("generate", "queued"),
    ]


def test_demo_password_from_the_environment_wins(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("DEMO_PASSWORD", "correct horse battery")
    call_command("bootstrap_demo", "--model-size", "tiny")
    assert (
        get_user_model().objects.get(username="annotator-1").check_password("correct horse battery")
    )
    assert not (tmp_path / "demo-password").exists()
