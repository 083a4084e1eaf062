"""Prompts and candidates keep their sanitised HTML from import; pages show it unrendered."""

import importlib
import json
import re

import pytest
from django.apps import apps
from django.urls import reverse

from feedback_app.annotation import services
from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Candidate, Prompt
from feedback_app.common.rendering import RENDER_VERSION, html_digest, render_untrusted
from feedback_app.core.models import Project

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


def test_ranking_page_shows_certified_stored_html_without_rendering_again(client, alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    project.memberships.create(user=alice)
    _import(project, "plain prompt", ["one", "two"])
    # Stand-ins the renderer never makes, certified as if it had: the page must show them as is.
    one, prompt = "<p>STORED-ONE</p>", "<p>STORED-PROMPT</p>"
    Candidate.objects.filter(text="one").update(html=one, html_digest=html_digest(["one"], [one]))
    Prompt.objects.filter(project=project).update(
        html=[prompt], html_digest=html_digest(["plain prompt"], [prompt])
    )
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


# --- stored HTML stays trusted: only what this renderer made of the current text is served ---

XSS = "<img src=x onerror=alert(1)>"


def _ranked_project(alice, prompt, candidates, *, name="html"):
    """A project of one task (overlap 1) that `alice` annotates."""
    project = Project.objects.create(
        name=name, candidates_per_task=len(candidates), annotations_per_task=1
    )
    project.memberships.create(user=alice)
    _import(project, prompt, candidates)
    return project


def _page(client, user, project) -> str:
    client.force_login(user)
    return client.get(reverse("annotation:annotate", args=[project.pk])).content.decode()


def _admin_form_data(response) -> dict:
    """What the admin change form posts back when nothing is touched (fields and inlines)."""
    data: dict = {}

    def add(form) -> None:
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            data[bound.html_name] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def _admin_post(client, root, model: str, pk: int, change) -> None:
    """Open the admin change form of `model` `pk` as `root`, apply `change` to it, save it."""
    client.force_login(root)
    url = reverse(f"admin:annotation_{model}_change", args=[pk])
    data = _admin_form_data(client.get(url))
    change(data)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["errors"]


def _inline_key(data: dict, text: str) -> str:
    """The inline form's field prefix ("candidates-0-") of the candidate showing `text`."""
    (key,) = [k for k, v in data.items() if k.startswith("candidates-") and v == text]
    return key.removesuffix("text")


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def test_admin_edit_of_a_candidate_in_the_task_inline_shows_the_new_texts_html_everywhere(
    client, alice, root
):
    from rest_framework.test import APIClient

    project = _ranked_project(alice, "plain prompt", ["one", "two"])
    task = project.tasks.get()
    new = "**edited** one"

    def edit(data):
        data[_inline_key(data, "one") + "text"] = new

    _admin_post(client, root, "task", task.pk, edit)
    body = _page(client, alice, project)
    assert "<p><strong>edited</strong> one</p>" in body and "<p>one</p>" not in body

    api = APIClient()
    api.force_authenticate(alice)
    shown = api.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
    assert {c["text"] for c in shown["candidates"]} == {new, "two"}
    edited = next(c["id"] for c in shown["candidates"] if c["text"] == new)
    other = next(c["id"] for c in shown["candidates"] if c["text"] == "two")
    ranking = {"ranking": [[edited], [other]]}
    assert api.post(f"/api/v1/tasks/{task.pk}/ranking/", ranking, format="json").status_code == 201
    api.force_authenticate(root)
    export = api.get(f"/api/v1/projects/{project.pk}/pairs/")
    rows = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    assert rows == [{"prompt": "plain prompt", "chosen": new, "rejected": "two"}]


def test_admin_edit_of_a_prompts_text_shows_the_new_texts_html(client, alice, root):
    project = _ranked_project(alice, "plain prompt", ["one", "two"])
    prompt = Prompt.objects.get(project=project)

    def edit(data):
        data["text"] = "an *edited* prompt"

    _admin_post(client, root, "prompt", prompt.pk, edit)
    body = _page(client, alice, project)
    assert "<p>an <em>edited</em> prompt</p>" in body and "plain prompt" not in body


def test_admin_edit_of_a_chats_messages_shows_the_new_messages_html(client, alice, root):
    chat = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "reply"}]
    project = _ranked_project(alice, [*chat, {"role": "user", "content": "and?"}], ["a", "b"])
    prompt = Prompt.objects.get(project=project)
    edited = [*chat, {"role": "user", "content": "and **now**?"}]

    def edit(data):
        data["messages"] = json.dumps(edited)

    _admin_post(client, root, "prompt", prompt.pk, edit)
    body = _page(client, alice, project)
    assert "<p>and <strong>now</strong>?</p>" in body and "<p>and?</p>" not in body


def test_admin_refuses_a_chat_without_message_content(client, root, alice):
    project = _ranked_project(alice, [{"role": "user", "content": "hi"}], ["a", "b"])
    prompt = Prompt.objects.get(project=project)
    client.force_login(root)
    url = reverse("admin:annotation_prompt_change", args=[prompt.pk])
    data = _admin_form_data(client.get(url))
    data["messages"] = json.dumps([{"role": "user"}])
    response = client.post(url, data)
    assert response.status_code == 200 and "prompt[0]" in str(response.context["errors"])
    assert Prompt.objects.get().messages == [{"role": "user", "content": "hi"}]


def test_html_posted_through_the_admin_forms_has_no_effect(client, alice, root):
    project = _ranked_project(alice, "plain prompt", ["one", "two"])
    task = project.tasks.get()
    prompt = Prompt.objects.get(project=project)

    def post_html_for_prompt(data):
        data.update(html=json.dumps([XSS]), render_version=str(RENDER_VERSION), html_digest="0")

    def post_html_for_candidate(data):
        key = _inline_key(data, "one")
        data.update({key + "html": XSS, key + "render_version": str(RENDER_VERSION)})

    _admin_post(client, root, "prompt", prompt.pk, post_html_for_prompt)
    _admin_post(client, root, "task", task.pk, post_html_for_candidate)
    assert Prompt.objects.get().html == [render_untrusted("plain prompt")]
    assert Candidate.objects.get(text="one").html == "<p>one</p>\n"
    body = _page(client, alice, project)
    assert "<img" not in body and "<p>one</p>" in body and "<p>plain prompt</p>" in body


def test_queryset_update_of_a_text_shows_the_new_texts_rendering_never_the_old_html(client, alice):
    project = _ranked_project(alice, "plain prompt", ["one", "two"])
    Candidate.objects.filter(text="one").update(text="*new* one")
    Prompt.objects.filter(project=project).update(text="new **prompt**")
    body = _page(client, alice, project)
    assert "<p><em>new</em> one</p>" in body and "<p>one</p>" not in body
    assert "<p>new <strong>prompt</strong></p>" in body and "plain prompt" not in body


def test_queryset_update_of_chat_messages_shows_the_new_messages_rendering(client, alice):
    project = _ranked_project(alice, [{"role": "user", "content": "old question"}], ["a", "b"])
    Prompt.objects.filter(project=project).update(
        messages=[{"role": "user", "content": "*new* question"}]
    )
    body = _page(client, alice, project)
    assert "<p><em>new</em> question</p>" in body and "old question" not in body


def test_raw_sql_update_of_a_text_shows_the_new_texts_rendering_never_the_old_html(client, alice):
    from django.db import connection

    project = _ranked_project(alice, "plain prompt", ["one", "two"])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE annotation_candidate SET text = %s WHERE text = %s", ["*sql*", "one"]
        )
        cursor.execute("UPDATE annotation_prompt SET text = %s", ["sql **prompt**"])
    body = _page(client, alice, project)
    assert "<p><em>sql</em></p>" in body and "<p>one</p>" not in body
    assert "<p>sql <strong>prompt</strong></p>" in body and "plain prompt" not in body


@pytest.mark.parametrize(
    "digest",
    [None, "", "0" * 32, "not hex at all", "é" * 32],
    ids=["digest-left-as-it-was", "no-digest", "wrong-digest", "garbage", "not-ascii"],
)
def test_stored_html_without_a_matching_digest_is_never_served(client, alice, digest):
    chat = [{"role": "user", "content": "hi *there*"}]
    project = _ranked_project(alice, chat, ["one", "two"])
    extra = {} if digest is None else {"html_digest": digest}
    Candidate.objects.filter(text="one").update(html=XSS, **extra)
    Prompt.objects.filter(project=project).update(html=[XSS], **extra)
    body = _page(client, alice, project)
    assert "<img" not in body and "onerror" not in body
    assert "<p>one</p>" in body and "<p>hi <em>there</em></p>" in body


def test_save_of_a_changed_text_stores_its_fresh_certified_html():
    project = Project.objects.create(name="html", candidates_per_task=2)
    _import(project, [{"role": "user", "content": "q"}], ["one", "two"])
    one = Candidate.objects.get(text="one")
    one.text = "*one*"
    one.save()
    two = Candidate.objects.get(text="two")
    two.text = "**two**"
    two.save(update_fields=["text"])
    prompt = Prompt.objects.get()
    prompt.messages = [{"role": "user", "content": "`q`"}]
    prompt.save()
    one, two = Candidate.objects.order_by("position")
    assert (one.html, two.html) == ("<p><em>one</em></p>\n", "<p><strong>two</strong></p>\n")
    assert Prompt.objects.get().html == ["<p><code>q</code></p>\n"]
    assert (
        one.html_is_current() and two.html_is_current() and Prompt.objects.get().html_is_current()
    )


def test_migration_0005_renders_and_certifies_every_row(alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    _import(project, [{"role": "user", "content": "*q*"}], ["**a**", "b"])
    # Rows as 0004 left them: no digest, and HTML a staff user could have set in the admin.
    Prompt.objects.update(html=[XSS], html_digest="")
    Candidate.objects.update(html=XSS, html_digest="")
    migration = importlib.import_module("feedback_app.annotation.migrations.0005_html_digest")
    migration.render_and_certify(apps, None)
    assert Prompt.objects.get().html == ["<p><em>q</em></p>\n"]
    assert set(Candidate.objects.values_list("html", flat=True)) == {
        "<p><strong>a</strong></p>\n",
        "<p>b</p>\n",
    }
    assert Prompt.objects.get().html_is_current()
    assert all(c.html_is_current() for c in Candidate.objects.all())


@pytest.mark.parametrize(
    "record, field",
    [
        ({"prompt": "p", "candidates": ["a", "b"], "html": XSS}, "html"),
        ({"prompt": "p", "candidates": [{"text": "a", "html": XSS}, "b"]}, "candidates[0]"),
    ],
)
def test_api_import_refuses_stored_html_naming_the_field(root, record, field):
    from rest_framework.test import APIClient

    project = Project.objects.create(name="html", candidates_per_task=2)
    api = APIClient()
    api.force_authenticate(root)
    response = api.post(f"/api/v1/projects/{project.pk}/prompts/", [record], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert not Prompt.objects.exists()


STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle=")
TABLE = "| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |"


def test_table_alignment_is_a_class_and_no_stored_html_has_a_style_attribute(alice):
    """The CSP refuses style attributes (issue 26): alignment is a class app.css styles."""
    project = Project.objects.create(name="html", candidates_per_task=2)
    _import(project, TABLE, [TABLE, '<td style="color:red">x</td>'])
    stored = [*Prompt.objects.get().html, *Candidate.objects.values_list("html", flat=True)]
    assert not any(STYLE_ATTRIBUTE.search(html) for html in stored), stored
    assert stored[0].count('class="align-center"') == 2 and "align-right" in stored[0]


def test_migration_0011_renders_rows_of_the_first_version_without_style(alice):
    project = Project.objects.create(name="html", candidates_per_task=2)
    _import(project, [{"role": "user", "content": TABLE}], [TABLE, "b"])
    # Rows as version 1 left them: certified then, alignment in a style attribute.
    old = '<table><tr><td style="text-align:center">2</td></tr></table>'
    Prompt.objects.update(html=[old], render_version=1)
    Candidate.objects.update(html=old, render_version=1)
    migration = importlib.import_module(
        "feedback_app.annotation.migrations.0011_render_v2_no_style"
    )
    migration.render_again(apps, None)
    rows = [Prompt.objects.get(), *Candidate.objects.all()]
    assert all(r.render_version == RENDER_VERSION and r.html_is_current() for r in rows)
    assert 'class="align-center"' in Prompt.objects.get().html[0]
    assert not any(STYLE_ATTRIBUTE.search(str(r.html)) for r in rows)
