import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from feedback_app.annotation import demo
from feedback_app.core.models import AuditEvent, Job, ModelVersion, Project

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_demo_bootstrap_creates_users_projects_model_and_round_one_job_once(
    settings, tmp_path, capsys, monkeypatch
):
    settings.VAR_DIR = tmp_path
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
    assert ModelVersion.objects.get(project=loop, is_active=True).name == "base"
    job = Job.objects.get(project=loop)
    assert (job.kind, job.status) == ("generate", "queued")
    launched = AuditEvent.objects.get(action="job.launch")  # the command's, from the command line
    assert (launched.via, launched.project, launched.data["job"]) == ("cli", loop, job.pk)

    call_command("bootstrap_demo", "--model-size", "tiny")  # a second `make run`
    assert (tmp_path / "demo-password").read_text().strip() == password
    assert Job.objects.count() == 1 and hand.tasks.count() == 30
    assert users.filter(username__startswith="annotator-").count() == 3


def test_demo_password_from_the_environment_wins(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("DEMO_PASSWORD", "correct horse battery")
    call_command("bootstrap_demo", "--model-size", "tiny")
    assert (
        get_user_model().objects.get(username="annotator-1").check_password("correct horse battery")
    )
    assert not (tmp_path / "demo-password").exists()
