"""Render stored HTML again with renderer version 2: table alignment as a class, no style
attribute (the Content-Security-Policy refuses them; issue 26).

Rows of another version would be rendered on every read anyway (their digest binds the old
version), and would keep their style attributes in the database; this renders them once.
Plain functions of common/rendering.py, as 0005 did; no model methods (historical models).
"""

from django.db import migrations

from feedback_app.common.rendering import RENDER_VERSION, render_stored

BATCH = 2000
FIELDS = ["html", "render_version", "html_digest"]


def _texts(model_name: str, row) -> list[str]:
    if model_name != "Prompt" or row.messages is None:
        return [row.text]
    return [m["content"] for m in row.messages]


def render_again(apps, schema_editor) -> None:
    """Render and certify every prompt, candidate and demonstration of another version."""
    for model_name in ("Prompt", "Candidate", "Demonstration"):
        model = apps.get_model("annotation", model_name)
        texts = ["text", "messages"] if model_name == "Prompt" else ["text"]
        stale = model.objects.exclude(render_version=RENDER_VERSION).only("pk", *texts)
        batch = []
        for row in stale.order_by("pk").iterator(chunk_size=BATCH):
            htmls, row.html_digest = render_stored(_texts(model_name, row))
            row.html = htmls if model_name == "Prompt" else htmls[0]
            row.render_version = RENDER_VERSION
            batch.append(row)
            if len(batch) == BATCH:
                model.objects.bulk_update(batch, FIELDS)
                batch = []
        model.objects.bulk_update(batch, FIELDS)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0010_task_first_top_task_top_split"),
    ]

    operations = [
        migrations.RunPython(render_again, migrations.RunPython.noop, elidable=True),
    ]
