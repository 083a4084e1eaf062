import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import jobs, services, versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True))
    return client


def test_loop_page_shows_round_models_and_launch_forms(admin_client, loop_project):
    project, base = loop_project
    body = admin_client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()
    assert 'data-testid="round">1<' in body
    assert base.name in body
    for kind in ("generate", "build_dataset", "train_reward", "train_dpo", "evaluate"):
        assert f'data-testid="start-{kind}"' in body
    assert 'name="train_dpo-beta"' in body and 'value="0.1"' in body


def test_loop_pages_are_for_admins_only(client, loop_project, alice):
    project, base = loop_project
    client.force_login(alice)  # an annotator of the project
    job = Job.objects.create(project=project, kind="build_dataset")
    for url in (
        reverse("finetuning:loop", args=[project.pk]),
        reverse("finetuning:models", args=[project.pk]),
        reverse("finetuning:job", args=[job.pk]),
        reverse("finetuning:job-status", args=[job.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("finetuning:launch", args=[project.pk, "build_dataset"])).status_code
        == 404
    )
    assert client.post(reverse("finetuning:promote", args=[project.pk, base.pk])).status_code == 404
    assert Job.objects.count() == 1


def test_launching_from_the_page_queues_a_job_and_shows_it(admin_client, loop_project):
    project, _ = loop_project
    url = reverse("finetuning:launch", args=[project.pk, "build_dataset"])
    data = {"build_dataset-min_votes": "1", "build_dataset-min_agreement": "0.6",
            "build_dataset-test_fraction": "0.2", "build_dataset-seed": "3"}  # fmt: skip
    response = admin_client.post(url, data)
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "finetuning:job", args=[job.pk]
    )
    assert job.params["min_agreement"] == 0.6 and job.params["seed"] == 3
    assert job.params["drop_all_bad"] is False  # an unticked box means False on an HTML form
    assert "recency_half_life" not in job.params  # left empty: every round weighs the same
    admin_client.post(url, {**data, "build_dataset-recency_half_life": "2"})
    assert Job.objects.order_by("-id").first().params["recency_half_life"] == 2.0


def test_bad_hyperparameters_come_back_on_the_form_with_the_field_named(
    admin_client, loop_project, make_snapshot
):
    project, _ = loop_project
    make_snapshot(project)
    url = reverse("finetuning:launch", args=[project.pk, "train_dpo"])
    data = {
        "train_dpo-beta": "-1",
        "train_dpo-learning_rate": "5e-5",
        "train_dpo-epochs": "1",
        "train_dpo-batch_size": "8",
        "train_dpo-max_length": "128",
        "train_dpo-loss_type": "ipo",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 400
    form = response.context["forms"]["train_dpo"]
    assert "beta" in form.errors and "must be a number in (0, 10]" in form.errors["beta"][0]
    assert Job.objects.count() == 0


def test_job_page_and_its_status_feed(admin_client, loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="train_dpo", params={"beta": 0.1})
    jobs.job_claim(job_id=job.pk, worker="w")
    Job.objects.filter(pk=job.pk).update(progress=0.5, metric_history=[{"step": 1, "loss": 0.69}])
    page = admin_client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    assert "50%" in page and 'data-testid="cancel"' in page
    status = admin_client.get(reverse("finetuning:job-status", args=[job.pk])).json()
    assert status["progress"] == 0.5 and status["metric_history"][0]["loss"] == 0.69
    admin_client.post(reverse("finetuning:job-cancel", args=[job.pk]))
    assert Job.objects.get(pk=job.pk).cancel_requested


def test_the_job_page_shows_where_and_how_it_ran_and_which_engine(admin_client, loop_project):
    project, _ = loop_project
    ran_on = {"host": "gpu-7", "launcher": "torchrun", "processes": 2, "backend": "gloo",
              "device": "cpu", "mixed_precision": "no"}  # fmt: skip
    engine = {"name": "transformers", "reason": "vllm is not installed", "vllm_version": None,
              "use_vllm": False}  # fmt: skip
    job = Job.objects.create(
        project=project, kind="train_dpo", status="failed",
        outputs={"ran_on": ran_on, "engine": engine},
    )  # fmt: skip
    page = admin_client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    section = page.split('data-testid="ran-on"', 1)[1].split("</section>", 1)[0]
    for text in ("gpu-7", "torchrun", "<td>2</td>", "gloo", "transformers", "not installed",
                 "TRL use_vllm</th><td>False"):  # fmt: skip
        assert text in section, text
    quiet = Job.objects.create(project=project, kind="build_dataset")
    page = admin_client.get(reverse("finetuning:job", args=[quiet.pk])).content.decode()
    assert 'data-testid="ran-on"' not in page


def test_failed_job_can_be_retried_from_its_page(admin_client, loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="build_dataset", status="failed", error="boom")
    response = admin_client.post(reverse("finetuning:job-retry", args=[job.pk]))
    retry = Job.objects.get(retry_of=job)
    assert response["Location"] == reverse("finetuning:job", args=[retry.pk])


def test_models_page_shows_lineage_metrics_and_who_won(admin_client, loop_project):
    project, base = loop_project
    child = versions.model_register(
        project=project, kind="policy", name="policy-7", weights="/x", parent=base,
        metrics={"win_rate": 0.75, "kl_to_parent": 0.12, "heldout_accuracy": 0.9},
        activate_if_first=False,
    )  # fmt: skip
    body = admin_client.get(reverse("finetuning:models", args=[project.pk])).content.decode()
    assert "policy-7" in body and "0.75" in body and "won" in body and "0.12" in body
    admin_client.post(reverse("finetuning:promote", args=[project.pk, child.pk]))
    assert ModelVersion.objects.get(pk=child.pk).is_active


def test_job_params_are_shown_as_json(admin_client, loop_project):
    project, _ = loop_project
    job = Job.objects.create(project=project, kind="generate", params={"temperature": 0.7})
    body = admin_client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    assert json.dumps({"temperature": 0.7}, indent=2) in body.replace("&quot;", '"')


def test_the_loop_page_says_when_no_worker_has_taken_a_job_for_minutes(admin_client, loop_project):
    project, _ = loop_project
    url = reverse("finetuning:loop", args=[project.pk])
    job = services.job_launch(project=project, kind="build_dataset", params={})
    assert 'data-testid="worker-absent"' not in admin_client.get(url).content.decode()  # just sent
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=7))
    body = admin_client.get(url).content.decode()
    assert 'data-testid="worker-absent"' in body
    assert "No worker has taken a job for 7 minutes" in body and "<code>default</code>" in body
    # Now a worker for that queue is seen busy (training): the job waits behind it, no alarm.
    busy = Job.objects.create(project=project, kind="train_dpo", queue="training")
    jobs.job_claim(job_id=busy.pk, worker="w:1", queues=["default", "training"])
    assert 'data-testid="worker-absent"' not in admin_client.get(url).content.decode()
