"""The job-kind registry (finetuning/kinds.py) is the one list of kinds: the rest agrees with it."""

import pytest

from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import Job
from feedback_app.finetuning import kinds, services, views

pytestmark = pytest.mark.django_db


def test_the_registry_and_the_job_kind_column_declare_the_same_kinds_and_labels():
    assert [(name, kind.label) for name, kind in kinds.KINDS.items()] == Job.Kind.choices
    assert all(name == kind.name for name, kind in kinds.KINDS.items())


def test_every_kind_goes_to_a_configured_queue(settings):
    for name, kind in kinds.KINDS.items():
        assert kind.queue in settings.JOB_QUEUES, name
    assert {kind.queue for kind in kinds.KINDS.values()} == set(settings.JOB_QUEUES)


def test_a_launched_or_retried_job_goes_to_the_queue_its_kind_names_today(loop_project, settings):
    project, _ = loop_project
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, "default": "cpu-pool"}
    job = services.job_launch(project=project, kind="build_dataset", params={})
    assert job.queue == "cpu-pool"
    job.status = Job.Status.FAILED
    job.save()
    settings.JOB_QUEUES = {**settings.JOB_QUEUES, "default": "cpu-pool-2"}  # renamed since
    assert services.job_retry(job=job).queue == "cpu-pool-2"


def test_an_unknown_kind_is_a_400_naming_kind(loop_project):
    project, _ = loop_project
    for bad in ("train_ppo", ["generate"], None):
        with pytest.raises(InvalidInput) as caught:
            services.job_launch(project=project, kind=bad, params={})
        assert [p.field for p in caught.value.problems] == ["kind"]


def test_the_worker_and_the_loop_page_read_the_registry():
    """One entry is the whole of a kind: its runner, torch flag and form are read from it."""
    assert {name: kind.run for name, kind in kinds.KINDS.items()} == kinds.RUNNERS
    assert {
        "generate", "train_reward", "train_dpo", "train_sft", "train_kto", "train_grpo",
        "train_rloo", "train_ensemble", "train_best_of_n", "train_online_dpo", "evaluate",
        "review_scores", "build_base", "judge_round",
    } == kinds.TORCH_KINDS  # fmt: skip
    # Launched from elsewhere: promote from the models page, build_base by `make run` (and the API),
    # import_archive by its upload, judge_round from the API (issue 23).
    launched_elsewhere = {"promote", "build_base", "import_archive", "judge_round"}
    assert set(kinds.FORMS) == set(kinds.KINDS) - launched_elsewhere
    assert views.FORMS is kinds.FORMS


def test_a_snapshots_recency_half_life_is_checked_naming_the_field_and_kept_when_given(
    loop_project,
):
    project, _ = loop_project
    for bad in (0, -1, "2", True, 5000):
        with pytest.raises(InvalidInput) as caught:
            services.job_launch(
                project=project, kind="build_dataset", params={"recency_half_life": bad}
            )
        assert [p.field for p in caught.value.problems] == ["recency_half_life"]
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="build_dataset", params={"kind": "kto", "recency_half_life": 2}
        )
    assert [p.field for p in caught.value.problems] == ["recency_half_life"]
    job = services.job_launch(
        project=project, kind="build_dataset", params={"recency_half_life": 2}
    )
    assert job.params["recency_half_life"] == 2.0
    off = services.job_launch(project=project, kind="build_dataset", params={})
    assert "recency_half_life" not in off.params  # off: equal weights, as before
