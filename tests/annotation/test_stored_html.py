"""Prompts and candidates keep their sanitised HTML from import; pages show it unrendered."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from feedback_app.annotation import services
from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Candidate, Project, Prompt
from feedback_app.common.rendering import RENDER_VERSION, render_untrusted

pytestmark = pytest.mark.django_db


def _import(project, prompt, candidates):
    records = check_records([(1, {"prompt": prompt, "candidates": candidates})], k=len(candidates))
    services.prompts_import(project=project, records=records)


def test_import_stores_the_sanitised_html_of_prompts_messages_and_candidates(alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    chat = [
        {"role": "user", "content": "**hi**"},
        {"role": "assistant", "content": "`x`"},
        {"role": "user", "content": "and?"},
    ]
    _import(project, chat, ["<script>alert(1)</script> *a*", "[x](javascript:alert(1))"])
    prompt = Prompt.objects.get(project=project)
    assert prompt.render_version == RENDER_VERSION
    assert prompt.html == [
        "<p><strong>hi</strong></p>\n",
        "<p><code>x</code></p>\n",
        "<p>and?</p>\n",
    ]
    first, second = Candidate.objects.filter(task__project=project).order_by("position")
    assert first.html == render_untrusted(first.text) and "<script>" not in first.html
    assert "<a" not in second.html and second.render_version == RENDER_VERSION


def test_ranking_page_shows_stored_html_without_rendering_again(client, alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    project.memberships.create(user=alice)
    _import(project, "plain prompt", ["one", "two"])
    Candidate.objects.filter(text="one").update(html="<p>STORED-ONE</p>")
    Prompt.objects.filter(project=project).update(html=["<p>STORED-PROMPT</p>"])
    client.force_login(alice)
    body = client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()
    assert "STORED-ONE" in body and "STORED-PROMPT" in body


def test_html_stored_by_another_renderer_version_is_not_trusted(client, alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    project.memberships.create(user=alice)
    _import(project, "plain prompt", ["one", "two"])
    stale = "<p><script>alert(1)</script>STALE</p>"
    Candidate.objects.filter(text="one").update(html=stale, render_version=RENDER_VERSION + 1)
    client.force_login(alice)
    body = client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()
    assert "STALE" not in body and "<p>one</p>" in body


def test_migration_renders_texts_stored_before_html_was_kept(alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    _import(project, [{"role": "user", "content": "*q*"}], ["**a**", "b"])
    Prompt.objects.update(html=[], render_version=0)
    Candidate.objects.update(html="", render_version=0)
    migration = importlib.import_module("feedback_app.annotation.migrations.0003_stored_html")
    migration.render_stored_texts(apps, None)
    assert Prompt.objects.get().html == ["<p><em>q</em></p>\n"]
    assert set(Candidate.objects.values_list("html", flat=True)) == {
        "<p><strong>a</strong></p>\n",
        "<p>b</p>\n",
    }
    assert not Candidate.objects.exclude(render_version=RENDER_VERSION).exists()
