"""The audit log refuses changes in the database too, not only in the ORM (core.models).

A trigger refuses UPDATE and DELETE of a row, except the one change Django makes itself: a
removed user or project sets `actor_id` or `project_id` to NULL (on_delete=SET_NULL), and the
event keeps `actor_name` and `target`. On SQLite only UPDATE is refused: Django empties tables
between transactional tests (and `manage.py flush`) with DELETE there, while PostgreSQL's TRUNCATE
fires no row trigger.
"""

from django.db import migrations

TABLE = "core_auditevent"
# Every column but the two links, unchanged; each link unchanged or cleared. Null-safe.
SAME = {
    "postgresql": " AND ".join(
        [
            *(
                f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}"
                for c in ("id", "created_at", "actor_name", "via", "address", "action", "target")
            ),
            "NEW.data::text IS NOT DISTINCT FROM OLD.data::text",
            "(NEW.actor_id IS NULL OR NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id)",
            "(NEW.project_id IS NULL OR NEW.project_id IS NOT DISTINCT FROM OLD.project_id)",
        ]
    ),
    "sqlite": " AND ".join(
        [
            *(
                f"NEW.{c} IS OLD.{c}"
                for c in ("id", "created_at", "actor_name", "via", "address", "action", "target")
            ),
            "NEW.data IS OLD.data",
            "(NEW.actor_id IS NULL OR NEW.actor_id IS OLD.actor_id)",
            "(NEW.project_id IS NULL OR NEW.project_id IS OLD.project_id)",
        ]
    ),
}
MESSAGE = "the audit log is append-only (core_auditevent)"

CREATE = {
    "postgresql": [
        f"""CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND {SAME["postgresql"]} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{MESSAGE}';
        END;
        $$ LANGUAGE plpgsql""",
        f"""CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()""",
    ],
    "sqlite": [
        f"""CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE ON {TABLE}
        WHEN NOT ({SAME["sqlite"]})
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    ],
}
DROP = {
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
        f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
    ],
    "sqlite": [f"DROP TRIGGER IF EXISTS {TABLE}_append_only"],
}


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("core", "0008_project_workspace_settings")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
