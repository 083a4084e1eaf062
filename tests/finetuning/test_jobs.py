from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from feedback_app.common.errors import Conflict, InvalidInput
from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import jobs, services

pytestmark = pytest.mark.django_db


def queued_messages(queue: str) -> int:
    """Messages waiting in a broker queue (Redis or the filesystem transport alike)."""
    from feedback_app.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.queue_declare(queue=queue, passive=False).message_count


def drain(queue: str) -> None:
    from feedback_app.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


@pytest.mark.django_db(transaction=True)
def test_a_launch_inside_a_rolled_back_transaction_sends_nothing(loop_project):
    project, _ = loop_project
    drain("default")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_launch(project=project, kind="build_dataset", params={})
        raise RuntimeError("roll back")
    assert Job.objects.count() == 0
    assert queued_messages("default") == 0
    services.job_launch(project=project, kind="build_dataset", params={})  # control: it does send
    assert queued_messages("default") == 1
    drain("default")


def test_jobs_go_to_the_queue_of_their_kind(settings):
    assert settings.JOB_QUEUES["generate"] == "generation"
    assert {settings.JOB_QUEUES[k] for k in ("train_reward", "train_dpo", "evaluate")} == {
        "training"
    }
    assert settings.JOB_QUEUES["build_dataset"] == "default"


def test_a_job_is_claimed_once(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    assert jobs.job_claim(job_id=job.pk, worker="w1") is True
    assert jobs.job_claim(job_id=job.pk, worker="w2") is False
    job.refresh_from_db()
    assert (job.status, job.worker) == ("running", "w1")


def test_cancelling_a_queued_job_ends_it_and_it_is_never_claimed(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    assert jobs.job_cancel(job=job).status == "cancelled"
    assert jobs.job_claim(job_id=job.pk, worker="w") is False


def test_cancelling_a_running_job_raises_its_flag(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    jobs.job_claim(job_id=job.pk, worker="w")
    job = jobs.job_cancel(job=job)
    assert job.status == "running" and job.cancel_requested


def test_cancelling_a_finished_job_is_refused(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset", status="succeeded")
    with pytest.raises(Conflict, match="already succeeded"):
        jobs.job_cancel(job=job)


def test_sweep_fails_running_jobs_with_a_stale_heartbeat_and_they_can_be_retried(
    loop_project, settings
):
    project, _ = loop_project
    stale = Job.objects.create(project=project, kind="build_dataset", params={"seed": 0})
    fresh = Job.objects.create(project=project, kind="build_dataset")
    for job in (stale, fresh):
        jobs.job_claim(job_id=job.pk, worker="w")
    old = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS + 5)
    Job.objects.filter(pk=stale.pk).update(heartbeat_at=old)
    assert jobs.jobs_sweep_stale() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "failed" and "heartbeat" in stale.error and stale.retryable
    assert fresh.status == "running"
    retry = jobs.job_retry(job=stale)
    assert (retry.status, retry.kind, retry.params, retry.retry_of_id) == (
        "queued", "build_dataset", {"seed": 0}, stale.pk,
    )  # fmt: skip


def test_a_runner_error_fails_the_job_with_a_message_and_the_traceback_tail(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")

    def broken(job, reporter):
        reporter.log("about to fail")
        raise ValueError("the data was wrong")

    status = jobs.job_execute(job_id=job.pk, worker="w", runners={"build_dataset": broken})
    job.refresh_from_db()
    assert status == job.status == "failed"
    assert job.error == "ValueError: the data was wrong"
    assert "raise ValueError" in job.traceback and "about to fail" in job.log_tail
    assert job.finished_at is not None


def test_progress_metrics_and_cancel_flow_through_the_reporter(loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")

    def runner(job, reporter):
        progress = reporter.progress_between(0.0, 1.0)
        assert progress(1, 4, {"loss": 0.9}) is False
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        reporter.cancel.set()  # what the heartbeat thread does when it reads the flag
        assert progress(2, 4, {"loss": 0.5}) is True
        reporter.stage("stopping")

    status = jobs.job_execute(job_id=job.pk, worker="w", runners={"build_dataset": runner})
    job.refresh_from_db()
    assert status == job.status == "cancelled"
    assert [h["loss"] for h in job.metric_history] == [0.9, 0.5]
    assert job.progress == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("train_dpo", {"beta": -1}, "beta"),
        ("train_dpo", {"loss_type": "nope"}, "loss_type"),
        ("train_dpo", {"learning_rate": "fast"}, "learning_rate"),
        ("train_reward", {"epochs": 0}, "epochs"),
        ("generate", {"temperature": -0.5}, "temperature"),
        ("generate", {"model_versions": [999]}, "model_versions"),
        ("generate", {"colour": "red"}, "colour"),
        ("build_dataset", {"min_agreement": 2}, "min_agreement"),
        ("build_dataset", {"test_fraction": 1.5}, "test_fraction"),
        ("evaluate", {}, "policy"),
        ("promote", {"model_version": "x"}, "model_version"),
        ("dance", {}, "kind"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field_and_nothing_is_stored(
    loop_project, make_snapshot, kind, params, field
):
    project, _ = loop_project
    if kind.startswith("train"):
        make_snapshot(project)
    with pytest.raises(InvalidInput) as err:
        services.job_launch(project=project, kind=kind, params=params)
    assert err.value.field == field
    assert Job.objects.count() == 0


def test_good_parameters_are_completed_with_defaults(loop_project):
    project, base = loop_project
    job = services.job_launch(project=project, kind="generate", params={"temperature": 0.7})
    assert job.params["model_versions"] == [base.pk]
    assert job.params["temperature"] == 0.7 and job.params["max_new_tokens"] > 0


def test_the_first_policy_is_active_and_promotion_moves_the_flag(loop_project):
    project, base = loop_project
    assert base.is_active
    child = services.model_register(
        project=project, kind="policy", name="child", weights="/x", parent=base,
        activate_if_first=False,
    )  # fmt: skip
    assert not child.is_active
    services.model_promote(version=child)
    active = ModelVersion.objects.filter(project=project, kind="policy", is_active=True)
    assert list(active.values_list("name", flat=True)) == ["child"]
