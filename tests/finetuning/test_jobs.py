import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.db.backends.signals import connection_created
from django.utils import timezone

from feedback_app.common.errors import Conflict, InvalidInput
from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import jobs, kinds, reporting, services, versions

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


@pytest.mark.django_db(transaction=True)
def test_in_eager_mode_a_launched_job_runs_at_once(loop_project):
    """The message is sent by task name, which Celery's eager mode ignores: the sender runs it."""
    from celery import current_app

    project, _ = loop_project
    eager, current_app.conf.task_always_eager = current_app.conf.task_always_eager, True
    try:
        job = services.job_launch(project=project, kind="build_dataset", params={})
    finally:
        current_app.conf.task_always_eager = eager
    job.refresh_from_db()
    assert job.status not in Job.ACTIVE and job.worker, (job.status, job.error)


def test_jobs_go_to_the_queue_of_their_kind(settings):
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, "training": "gpu"}  # QUEUE_TRAINING=gpu
    assert {name: kind.queue_name for name, kind in kinds.KINDS.items()} == {
        "generate": "generation",
        "build_dataset": "default",
        "train_reward": "gpu",
        "train_dpo": "gpu",
        "train_sft": "gpu",
        "train_kto": "gpu",
        "train_grpo": "gpu",
        "train_rloo": "gpu",
        "train_ensemble": "gpu",
        "train_best_of_n": "gpu",
        "train_online_dpo": "gpu",
        "evaluate": "gpu",
        "promote": "default",
        "review_scores": "generation",  # quick work (issue 25): not behind training
        "build_base": "gpu",
        "import_archive": "default",
        "judge_round": "generation",
    }


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
    retry = services.job_retry(job=stale)
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


def test_a_failed_rank_fails_the_job_with_that_ranks_message(loop_project):
    from training.launch import RankFailed

    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")

    def ranks_fail(job, reporter):
        raise RankFailed("rank 1 failed: ValueError: bad batch\n(its log tail)", rank=1)

    status = jobs.job_execute(job_id=job.pk, worker="w", runners={"build_dataset": ranks_fail})
    job.refresh_from_db()
    assert status == job.status == "failed"
    assert job.error == "rank 1 failed: ValueError: bad batch\n(its log tail)"


def test_outputs_recorded_while_running_stay_on_a_failed_job_and_join_the_final_ones(
    loop_project,
):
    project, _ = loop_project
    failing = Job.objects.create(project=project, kind="build_dataset")
    done = Job.objects.create(project=project, kind="build_dataset")

    def fails_after_recording(job, reporter):
        reporter.record(ran_on={"host": "h", "processes": 2})
        raise ValueError("later")

    def succeeds(job, reporter):
        reporter.record(ran_on={"host": "h", "processes": 2})
        return {"snapshot": 1}

    jobs.job_execute(
        job_id=failing.pk, worker="w", runners={"build_dataset": fails_after_recording}
    )
    jobs.job_execute(job_id=done.pk, worker="w", runners={"build_dataset": succeeds})
    failing.refresh_from_db()
    done.refresh_from_db()
    assert failing.status == "failed" and failing.outputs == {
        "ran_on": {"host": "h", "processes": 2}
    }
    assert done.outputs == {"ran_on": {"host": "h", "processes": 2}, "snapshot": 1}


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
    child = versions.model_register(
        project=project, kind="policy", name="child", weights="/x", parent=base,
        activate_if_first=False,
    )  # fmt: skip
    assert not child.is_active
    versions.model_promote(version=child)
    active = ModelVersion.objects.filter(project=project, kind="policy", is_active=True)
    assert list(active.values_list("name", flat=True)) == ["child"]


# --- nothing stays queued or running for ever (issue 9) ---------------------------------------


def _launch_unsent(project, kind="build_dataset", ago=0.0):
    """A queued job as `job_create` stores it, created and sent `ago` seconds back."""
    sent = timezone.now() - timedelta(seconds=ago)
    job = Job.objects.create(
        project=project, kind=kind, queue="default", sent_at=sent, send_count=1
    )
    Job.objects.filter(pk=job.pk).update(created_at=sent)
    job.refresh_from_db()
    return job


def _worker_job(project, *, queues, heartbeat_ago, status="running"):
    """A job some worker consuming `queues` claimed; its heartbeat last stamped that long ago."""
    job = Job.objects.create(project=project, kind="train_dpo", queue="training")
    jobs.job_claim(job_id=job.pk, worker="w:1", queues=queues)
    beat = timezone.now() - timedelta(seconds=heartbeat_ago)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=beat, status=status)
    return job


def test_a_launched_job_records_its_queue_and_its_send(loop_project):
    project, _ = loop_project
    job = services.job_launch(project=project, kind="build_dataset", params={})
    assert (job.queue, job.send_count) == ("default", 1) and job.sent_at is not None


def test_a_queued_job_no_worker_took_is_sent_again_then_failed_naming_its_queue(
    loop_project, settings
):
    project, _ = loop_project
    drain("default")
    job = _launch_unsent(project)
    now = timezone.now()
    assert jobs.jobs_recover_unclaimed(now=now) == (0, 0)  # too early for anything
    later = now + timedelta(seconds=settings.JOB_UNCLAIMED_RESEND_SECONDS + 1)
    assert jobs.jobs_recover_unclaimed(now=later) == (1, 0)
    assert queued_messages("default") == 1  # really sent again
    job.refresh_from_db()
    assert job.status == "queued" and job.send_count == 2
    assert jobs.jobs_recover_unclaimed(now=later) == (0, 0)  # not again until another wait
    end = now + timedelta(seconds=settings.JOB_UNCLAIMED_FAIL_SECONDS + 1)
    assert jobs.jobs_recover_unclaimed(now=end) == (0, 1)
    job.refresh_from_db()
    assert job.status == "failed" and job.retryable
    assert "No worker took this job" in job.error and "queue 'default'" in job.error
    drain("default")


def test_a_job_waiting_behind_a_busy_worker_is_neither_sent_again_nor_failed(
    loop_project, settings
):
    project, _ = loop_project
    drain("default")
    # One worker for every queue, training for hours: its heartbeat is fresh.
    _worker_job(project, queues=["default", "training"], heartbeat_ago=1)
    job = _launch_unsent(project, ago=settings.JOB_UNCLAIMED_FAIL_SECONDS * 3)
    assert jobs.jobs_recover_unclaimed() == (0, 0)
    job.refresh_from_db()
    assert job.status == "queued" and job.send_count == 1
    assert queued_messages("default") == 0


def test_only_a_worker_that_consumes_the_jobs_queue_counts_as_a_sign_of_life(
    loop_project, settings
):
    project, _ = loop_project
    drain("default")
    _worker_job(project, queues=["training"], heartbeat_ago=1)  # busy, but not for "default"
    _launch_unsent(project, ago=settings.JOB_UNCLAIMED_RESEND_SECONDS + 5)
    assert jobs.jobs_recover_unclaimed() == (1, 0)
    drain("default")


def test_the_wait_counts_from_when_the_queues_worker_was_last_seen(loop_project, settings):
    """The worker finished its long job a moment ago: the queued job's wait starts then."""
    project, _ = loop_project
    drain("default")
    _worker_job(project, queues=["default"], heartbeat_ago=10, status="succeeded")
    _launch_unsent(project, ago=settings.JOB_UNCLAIMED_FAIL_SECONDS * 3)
    assert jobs.jobs_recover_unclaimed() == (0, 0)
    later = timezone.now() + timedelta(seconds=settings.JOB_UNCLAIMED_RESEND_SECONDS)
    assert jobs.jobs_recover_unclaimed(now=later) == (1, 0)
    drain("default")


def test_the_sweep_fails_a_running_job_that_outran_the_time_limit(loop_project, settings):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    jobs.job_claim(job_id=job.pk, worker="w")
    started = timezone.now() - timedelta(seconds=settings.JOB_TIME_LIMIT_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(started_at=started)  # its heartbeat is still fresh
    assert jobs.jobs_sweep() == jobs.SweepResult(overtime=1)
    job.refresh_from_db()
    assert job.status == "failed" and "time limit" in job.error and job.retryable


def test_cancel_of_a_running_job_whose_worker_went_silent_is_immediate(loop_project, settings):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    jobs.job_claim(job_id=job.pk, worker="w")
    silent = jobs.SILENT_BEATS * settings.JOB_HEARTBEAT_SECONDS + 1
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=silent))
    job = jobs.job_cancel(job=job)
    assert job.status == "cancelled" and "No worker was holding it" in job.error


def test_no_late_worker_brings_back_a_job_cancelled_or_swept_under_it(loop_project, settings):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    jobs.job_claim(job_id=job.pk, worker="w")
    old = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS * 100)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=old)
    jobs.job_cancel(job=job)
    # The worker wakes up: claims again (a redelivered message), beats, reports, finishes.
    assert jobs.job_claim(job_id=job.pk, worker="late") is False
    reporter = reporting.JobReporter(job.pk)
    reporter._beat_once()
    reporter.log("still here")
    reporter.flush()
    assert jobs._finish(job.pk, status=Job.Status.SUCCEEDED) is False
    job.refresh_from_db()
    assert job.status == "cancelled" and job.heartbeat_at == old and job.worker == "w"
    assert reporter.cancel.is_set()  # and the late job is told to stop


class RefusingDatabase:
    """Makes the database refuse the first `times` matching statements, then lets them through.

    A fault injected through Django's execute wrappers (its documented instrumentation hook)
    into every connection the job's threads open: the statements reach no database until
    `times` refusals were made; what follows runs on the real one.
    """

    def __init__(self, *, times: int, matches):
        self.times = times
        self.matches = matches
        self.refused = 0
        self.passed_after = threading.Event()

    def __call__(self, execute, sql, params, many, context):
        if self.matches(sql):
            if self.refused < self.times:
                self.refused += 1
                raise OperationalError("fault injected: the database refuses the connection")
            self.passed_after.set()
        return execute(sql, params, many, context)

    def install(self, sender, connection, **kwargs):
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)


@pytest.fixture
def refusing_database():
    installed = []

    def install(**kwargs) -> RefusingDatabase:
        fault = RefusingDatabase(**kwargs)
        connection_created.connect(fault.install)  # the heartbeat thread's, and reconnections
        fault.install(None, connection)  # this thread's, already open
        installed.append(fault)
        return fault

    yield install
    for fault in installed:
        connection_created.disconnect(fault.install)
        if fault in connection.execute_wrappers:
            connection.execute_wrappers.remove(fault)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_survives_database_errors_and_resumes(
    loop_project, settings, refusing_database
):
    project, _ = loop_project
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    fault = refusing_database(
        times=4,
        matches=lambda sql: (
            threading.current_thread().name.startswith("job-") and "heartbeat_at" in sql
        ),
    )
    job = Job.objects.create(project=project, kind="build_dataset")

    def runner(job, reporter):
        fault.passed_after.wait(timeout=15)  # the job runs while the database refuses
        return {}

    status = jobs.job_execute(job_id=job.pk, worker="w", runners={"build_dataset": runner})
    assert fault.refused == 4
    assert fault.passed_after.is_set(), "the heartbeat never beat again after the errors"
    assert status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_progress_write_the_database_refuses_does_not_fail_the_job(
    loop_project, settings, refusing_database
):
    """A busy database (a long import on SQLite) once made a healthy training job fail."""
    project, _ = loop_project
    fault = refusing_database(
        times=1, matches=lambda sql: sql.startswith("UPDATE") and "metric_history" in sql
    )
    job = Job.objects.create(project=project, kind="build_dataset")

    def runner(job, reporter):
        progress = reporter.progress_between(0.0, 1.0)
        progress(1, 2, {"loss": 0.9})  # refused
        reporter._last_write = 0  # the next callback writes at once (no throttle wait)
        progress(2, 2, {"loss": 0.5})
        return {}

    status = jobs.job_execute(job_id=job.pk, worker="w", runners={"build_dataset": runner})
    job.refresh_from_db()
    assert fault.refused == 1 and status == job.status == "succeeded"
    assert [h["loss"] for h in job.metric_history] == [0.9, 0.5]


def test_the_sweeper_command_makes_a_pass_and_says_what_it_swept(loop_project, settings):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset")
    jobs.job_claim(job_id=job.pk, worker="w")
    old = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=old)
    out = io.StringIO()
    call_command("sweep_jobs", "--once", stdout=out)
    job.refresh_from_db()
    assert job.status == "failed" and "Swept: 1 silent" in out.getvalue()
