"""The OpenAPI schema renders, lists every endpoint, and the docs page works offline."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

ENDPOINTS = {
    "/api/v1/projects/": {"get", "post"},
    "/api/v1/projects/{id}/": {"get", "put", "patch"},
    "/api/v1/projects/{project_id}/prompts/": {"post"},
    "/api/v1/projects/{project_id}/tasks/next/": {"get"},
    "/api/v1/tasks/{task_id}/ranking/": {"post"},
    "/api/v1/tasks/{task_id}/skip/": {"post"},
    "/api/v1/rankings/": {"get"},
    "/api/v1/rankings/{id}/": {"get"},
    "/api/v1/projects/{project_id}/pairs/": {"get"},
    "/api/v1/projects/{project_id}/export/": {"get"},
    "/api/v1/projects/import-archive/": {"post"},
    "/api/v1/projects/{project_id}/snapshots/": {"get", "post"},
    "/api/v1/snapshots/{id}/": {"get"},
    "/api/v1/snapshots/{id}/files/{split}/": {"get"},
    "/api/v1/jobs/": {"get", "post"},
    "/api/v1/jobs/{id}/": {"get"},
    "/api/v1/jobs/{id}/cancel/": {"post"},
    "/api/v1/jobs/{id}/retry/": {"post"},
    "/api/v1/model-versions/": {"get"},
    "/api/v1/model-versions/{id}/": {"get"},
    "/api/v1/model-versions/{id}/promote/": {"post"},
    "/api/v1/projects/{project_id}/feedback/": {"get", "post"},
    "/api/v1/projects/{project_id}/quality/": {"get"},
    "/api/v1/projects/{project_id}/quality/{figure}/": {"get"},
    "/api/v1/projects/{project_id}/quality/refresh/": {"post"},
    "/api/v1/audit/": {"get"},
    "/api/v1/audit/{id}/": {"get"},
}


@pytest.fixture
def schema(db) -> dict:
    response = APIClient().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_lists_every_endpoint_with_request_and_response_shapes(schema):
    paths = schema["paths"]
    assert set(ENDPOINTS) <= set(paths)
    for path, methods in ENDPOINTS.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            op = paths[path][method]
            assert any(code.startswith("2") for code in op["responses"]), (path, method)
            assert "400" in op["responses"] and "401" in op["responses"]
    assert "requestBody" in paths["/api/v1/tasks/{task_id}/ranking/"]["post"]
    assert set(
        paths["/api/v1/projects/{project_id}/prompts/"]["post"]["requestBody"]["content"]
    ) >= {
        "application/json",
        "multipart/form-data",
    }
    assert "Error" in schema["components"]["schemas"]


def test_docs_page_uses_local_assets(client, db):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html
    asset = html.split("/static/drf_spectacular_sidecar/")[1].split('"')[0]
    assert client.get(f"/static/drf_spectacular_sidecar/{asset}").status_code == 200


def test_list_filters_are_documented_with_their_types_and_bounds(schema):
    from feedback_app.common.storable import INT64_MAX
    from feedback_app.core.models import Job, ModelVersion

    def query(path: str) -> dict:
        ops = schema["paths"][path]["get"]["parameters"]
        return {p["name"]: p["schema"] for p in ops if p["in"] == "query"}

    an_id = {"type": "integer", "minimum": 1, "maximum": INT64_MAX}
    jobs, versions, rankings = (
        query("/api/v1/jobs/"),
        query("/api/v1/model-versions/"),
        query("/api/v1/rankings/"),
    )
    assert jobs["project"] == versions["project"] == an_id
    assert set(jobs["kind"]["enum"]) == set(Job.Kind.values)
    assert set(jobs["status"]["enum"]) == set(Job.Status.values)
    assert set(versions["kind"]["enum"]) == set(ModelVersion.Kind.values)
    assert rankings["project"] == rankings["annotator"] == rankings["round"] == an_id
    assert rankings["since"] == {"type": "string", "format": "date-time"}


def test_the_audit_filters_are_documented_with_their_types_and_bounds(schema):
    from feedback_app.common.storable import INT64_MAX
    from feedback_app.core.audit import ACTION_MAX, ACTION_PATTERN
    from feedback_app.core.models import AuditEvent

    op = schema["paths"]["/api/v1/audit/"]["get"]
    query = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
    an_id = {"type": "integer", "minimum": 1, "maximum": INT64_MAX}
    assert query["project"] == query["actor"] == an_id
    assert query["action"] == {"type": "string", "pattern": f"^{ACTION_PATTERN}$",
                               "maxLength": ACTION_MAX}  # fmt: skip
    assert set(query["via"]["enum"]) == set(AuditEvent.Via.values)
    assert query["since"] == query["until"] == {"type": "string", "format": "date-time"}
    assert "403" in op["responses"]
