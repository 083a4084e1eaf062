"""The API's side of issue 25: the /api/v1/ index, the promote confirmation, version labels."""

import pytest

from feedback_app.core.models import ModelVersion
from feedback_app.finetuning.versions import model_register

from .conftest import client_for

pytestmark = pytest.mark.django_db

UNCLEAR = {"win_rate": 0.55, "win_rate_low": 0.3, "win_rate_high": 0.77}


def test_the_api_root_answers_an_index_that_links_the_docs_schema_and_endpoints(client):
    body = client.get("/api/v1/").json()
    assert body["docs"].endswith("/api/v1/docs/") and body["schema"].endswith("/api/v1/schema/")
    assert body["endpoints"]["jobs"]["url"].endswith("/api/v1/jobs/")
    assert body["endpoints"]["model_versions"]["url"].endswith("/api/v1/model-versions/")


def test_promoting_an_unclear_version_needs_confirm_true_and_a_400_names_confirm(world):
    a = world.project_a
    v = model_register(
        project=a, kind="policy", name="v9", stage="dpo", weights="/w", parent=world.version_a,
        metrics=UNCLEAR, activate_if_first=False,
    )  # fmt: skip
    dave = client_for(world.dave)
    refused = dave.post(f"/api/v1/model-versions/{v.pk}/promote/")
    assert refused.status_code == 400
    problem = refused.json()["errors"][0]
    assert problem["field"] == "confirm" and "includes 0.5" in problem["message"]
    assert not ModelVersion.objects.get(pk=v.pk).is_active
    bad = dave.post(f"/api/v1/model-versions/{v.pk}/promote/", {"confirm": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "confirm"
    done = dave.post(f"/api/v1/model-versions/{v.pk}/promote/", {"confirm": True}, format="json")
    assert done.status_code == 200 and done.json()["is_active"]
    assert done.json()["label"] == "v9 · DPO"


def test_a_version_never_evaluated_is_promoted_without_confirm(world):
    v = model_register(
        project=world.project_a, kind="policy", name="v8", weights="/w", activate_if_first=False
    )
    assert client_for(world.dave).post(f"/api/v1/model-versions/{v.pk}/promote/").status_code == 200
