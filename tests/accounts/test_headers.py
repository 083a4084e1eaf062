"""Every page carries a Content-Security-Policy with no inline script, and no template has one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from feedback_app.core.models import Job

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


@pytest.fixture
def pages(make_user, make_project) -> tuple[Client, list[str]]:
    root = make_user("root", is_staff=True, is_superuser=True)
    project = make_project(name="P", annotators=[root])
    job = Job.objects.create(project=project, kind="build_dataset", params={})
    client = Client()
    client.force_login(root)
    urls = [
        "/",
        "/account/",
        f"/projects/{project.pk}/annotate/",
        f"/projects/{project.pk}/guidelines/",
        f"/projects/{project.pk}/import/",
        f"/projects/{project.pk}/loop/",
        f"/projects/{project.pk}/models/",
        f"/jobs/{job.pk}/",
        "/api/v1/docs/",
        "/api/v1/docs/?script=",
        "/api/v1/projects/",
        "/admin/",
        "/admin/accounts/apitoken/",
        "/admin/axes/accessattempt/",
        "/no-such-page/",
    ]
    return client, urls


def test_every_page_has_a_policy_without_inline_scripts(pages):
    client, urls = pages
    answers = [(url, client.get(url)) for url in urls] + [
        ("/accounts/login/", Client().get("/accounts/login/"))
    ]
    for url, response in answers:
        assert response.status_code in (200, 404), (url, response.status_code)
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], url
        assert directives["style-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == [
            "'none'"
        ]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=|<style[\s>]", re.I)


def test_no_template_has_an_inline_script_handler_or_style():
    files = [p for d in ("templates", "jinja2") for p in (ROOT / d).rglob("*.html")] + list(
        (ROOT / "feedback_app").rglob("templates/**/*.html")
    )
    assert len(files) > 10
    for path in files:
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE):
            assert not pattern.search(text), f"{path.relative_to(ROOT)}: {pattern.search(text)}"


def test_the_api_docs_page_loads_its_start_up_script_as_a_file(pages):
    client, _ = pages
    page = client.get("/api/v1/docs/").content.decode()
    assert not INLINE_SCRIPT.search(page) and not INLINE_STYLE.search(page)
    assert 'src="/api/v1/docs/?script="' in page
    script = client.get("/api/v1/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")


def test_the_header_is_django_csps_policy_and_follows_a_settings_change(client, settings):
    from csp.utils import build_policy

    assert client.get("/accounts/login/")["Content-Security-Policy"] == build_policy()
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert client.get("/accounts/login/")["Content-Security-Policy"] == "default-src 'none'"
