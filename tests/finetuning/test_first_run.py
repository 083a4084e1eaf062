"""Issue 13, first run: the base model is a job (`build_base`) whose success launches round 1."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import AuditEvent, Job
from feedback_app.finetuning import kinds, reporting, selectors, services
from feedback_app.finetuning.management.commands.watch_jobs import job_line

pytestmark = pytest.mark.django_db


def test_build_base_params_are_filled_in_and_stored_as_accepted(loop_project):
    project, _ = loop_project
    clean = kinds.check_params(project, "build_base", {"first_round": {"temperature": 0.5}})
    assert clean["size"] == "default" and clean["first_round"]["temperature"] == 0.5
    assert kinds.check_params(project, "build_base", clean) == clean
    assert kinds.check_params(project, "build_base", {"size": "tiny"})["first_round"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"size": "huge"}, "size"),
        ({"steps": 3}, "steps"),
        ({"first_round": "yes"}, "first_round"),
        ({"first_round": {"temperature": -1}}, "first_round.temperature"),
        ({"first_round": {"model_versions": [1]}}, "first_round.model_versions"),
    ],
)
def test_bad_build_base_params_are_a_400_naming_the_field(loop_project, params, field):
    project, _ = loop_project
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(project=project, kind="build_base", params=params)
    assert caught.value.problems[0].field == field
    assert not Job.objects.filter(kind="build_base").exists()


def _finished(project, outputs, status=Job.Status.SUCCEEDED):
    return Job.objects.create(
        project=project, kind="build_base", params={}, status=status, outputs=outputs
    )


def test_a_succeeded_job_naming_a_next_job_launches_it_through_the_kinds_checks(loop_project):
    project, base = loop_project
    first = _finished(project, {"next": {"kind": "generate", "params": {"seed": 3}}})

    launched = services.job_launch_next(job_id=first.pk)

    assert (launched.kind, launched.status, launched.queue) == ("generate", "queued", "generation")
    assert launched.params["model_versions"] == [base.pk] and launched.params["seed"] == 3
    first.refresh_from_db()
    assert first.outputs["next_job"] == launched.pk and first.status == "succeeded"


def test_a_next_job_belongs_to_the_first_jobs_creator_and_is_recorded_as_the_systems(
    loop_project, django_user_model
):
    project, _ = loop_project
    ada = django_user_model.objects.create_user("ada")
    first = _finished(project, {"next": {"kind": "generate", "params": {}}})
    Job.objects.filter(pk=first.pk).update(created_by=ada)

    launched = services.job_launch_next(job_id=first.pk)

    assert launched.created_by == ada
    event = AuditEvent.objects.get(action="job.launch")
    assert (event.actor, event.via, event.data["job"]) == (ada, "system", launched.pk)


def test_a_refused_next_job_is_written_on_the_first_which_stays_succeeded(loop_project):
    project, _ = loop_project
    first = _finished(project, {"next": {"kind": "generate", "params": {"temperature": -1}}})
    assert services.job_launch_next(job_id=first.pk) is None
    first.refresh_from_db()
    assert "temperature" in first.outputs["next_refused"] and first.status == "succeeded"
    assert Job.objects.count() == 1


def test_only_a_succeeded_job_launches_its_next(loop_project):
    project, _ = loop_project
    spec = {"next": {"kind": "build_dataset", "params": {}}}
    for status in (Job.Status.FAILED, Job.Status.CANCELLED, Job.Status.RUNNING):
        assert services.job_launch_next(job_id=_finished(project, spec, status).pk) is None
    assert services.job_launch_next(job_id=_finished(project, {}).pk) is None
    assert not Job.objects.filter(kind="build_dataset").exists()


def test_a_next_job_is_launched_once_whoever_asks_again(loop_project):
    project, _ = loop_project
    first = _finished(project, {"next": {"kind": "generate", "params": {}}})
    launched = services.job_launch_next(job_id=first.pk)
    assert services.job_launch_next(job_id=first.pk) is None  # the sweep, after the worker
    refused = _finished(project, {"next": {"kind": "generate", "params": {"temperature": -1}}})
    assert services.job_launch_next(job_id=refused.pk) is None
    assert services.job_launch_next(job_id=refused.pk) is None
    assert list(Job.objects.filter(kind="generate")) == [launched]
    refused.refresh_from_db()
    assert "next_job" not in refused.outputs


def test_the_sweep_launches_a_next_job_whose_worker_died_before_launching_it(loop_project):
    """A worker killed between marking the build succeeded and launching round 1: the sweep
    launches it after a grace period, once; recent chains only, and not while the worker may
    still be at it."""
    project, _ = loop_project
    now = timezone.now()
    spec = {"next": {"kind": "generate", "params": {}}}

    def finished(ago):
        job = _finished(project, dict(spec))
        Job.objects.filter(pk=job.pk).update(finished_at=now - ago)
        return job

    orphan, just_now, long_ago = (
        finished(timedelta(minutes=2)),
        finished(timedelta(seconds=5)),
        finished(timedelta(days=3)),
    )
    out = io.StringIO()
    call_command("sweep_jobs", "--once", stdout=out)
    assert services.jobs_launch_next_pending() == []  # once only

    launched = Job.objects.get(kind="generate")
    for job in (orphan, just_now, long_ago):
        job.refresh_from_db()
    assert orphan.outputs["next_job"] == launched.pk
    assert "next_job" not in just_now.outputs and "next_job" not in long_ago.outputs


def test_a_labelled_progress_callback_counts_the_steps_beside_the_bar(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_base", status=Job.Status.RUNNING)
    reporter = reporting.JobReporter(job.pk, min_write_interval=0)
    reporter.progress_between(0.0, 1.0, label="Pretraining")(120, 400, {"loss": 5.0})
    job.refresh_from_db()
    assert (job.progress, job.progress_note) == (0.3, "Pretraining: step 120/400")
    assert job_line(job) == f"base model (job {job.pk}): 30% (Pretraining: step 120/400)"


def test_watch_jobs_prints_each_watched_job_until_none_is_active(loop_project, monkeypatch):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_base", status=Job.Status.SUCCEEDED)
    Job.objects.create(project=project, kind="build_dataset", status=Job.Status.QUEUED)
    out = io.StringIO()
    call_command("watch_jobs", "--kind", "build_base", "--every", "0", stdout=out)
    assert out.getvalue() == ""  # nothing of its kinds active: leaves at once, silent

    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    looks = []

    def look(**kwargs):  # the worker finishes the job between the watcher's first two looks
        looks.append(kwargs)
        if len(looks) == 2:
            Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
        return real(**kwargs)

    real = selectors.jobs_watched
    monkeypatch.setattr(selectors, "jobs_watched", look)
    out = io.StringIO()
    call_command("watch_jobs", "--kind", "build_base", "--every", "0", stdout=out)

    assert out.getvalue().splitlines() == [
        f"base model (job {job.pk}): queued, waiting for the worker",
        f"base model (job {job.pk}): done",
    ]
    assert len(looks) == 3  # it left after two looks found nothing active


def test_a_failed_job_is_shown_with_the_first_line_of_its_error(loop_project):
    project, _ = loop_project
    job = Job.objects.create(
        project=project, kind="generate", status=Job.Status.FAILED, error="ValueError: x\ny"
    )
    assert job_line(job) == f"round (job {job.pk}): failed: ValueError: x"


def _running(project, kind="build_base", *, progress=0.25, elapsed=60):
    now = timezone.now()
    return Job.objects.create(
        project=project, kind=kind, status=Job.Status.RUNNING, progress=progress,
        progress_note="Pretraining: step 125/500", started_at=now - timedelta(seconds=elapsed),
        heartbeat_at=now,
    )  # fmt: skip


def test_watch_jobs_line_gives_the_time_left_from_the_step_rate(loop_project):
    project, _ = loop_project
    job = _running(project)
    assert job_line(job) == (
        f"base model (job {job.pk}): 25% (Pretraining: step 125/500), about 3 min left"
    )


def test_the_job_page_status_carries_the_time_left(loop_project):
    project, _ = loop_project
    assert selectors.job_status(_running(project))["eta"] == "about 3 min left"
    queued = Job.objects.create(project=project, kind="generate")
    assert selectors.job_status(queued)["eta"] is None


def test_watch_jobs_ends_with_the_loop_demos_ranking_page_once_its_jobs_succeeded(loop_project):
    from feedback_app.annotation.demo import LOOP_PROJECT

    project, _ = loop_project
    project.name = LOOP_PROJECT
    project.save()
    Job.objects.create(project=project, kind="generate", status=Job.Status.SUCCEEDED)
    out = io.StringIO()
    call_command("watch_jobs", "--every", "0", "--demo-url", "http://127.0.0.1:8000/", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        f"the loop demo is ready: http://127.0.0.1:8000/projects/{project.pk}/annotate/"
    )


def test_watch_jobs_says_the_loop_demo_is_not_ready_when_its_round_failed(
    loop_project, monkeypatch
):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="generate", status=Job.Status.QUEUED)
    real = selectors.jobs_watched

    def look(**kwargs):  # the round fails after the watcher's first look
        found = real(**kwargs)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="OSError: disk")
        return found

    monkeypatch.setattr(selectors, "jobs_watched", look)
    out = io.StringIO()
    call_command("watch_jobs", "--every", "0", "--demo-url", "http://x/", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        f"the loop demo is not ready: round (job {job.pk}): failed: OSError: disk"
    )
