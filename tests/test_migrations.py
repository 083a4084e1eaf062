"""Moving models between apps touches no row: a database filled before the move reads the same.

Projects and memberships (annotation), model versions and jobs (finetuning) and dataset
snapshots (preferences) moved into `core` with their tables pinned. This fills every table under
the migrations as they stood before the move, migrates forward, and compares each table row by
row, on whichever backend the suite runs (PostgreSQL and SQLite in CI).
"""

from __future__ import annotations

import datetime as dt

BEFORE = [
    ("annotation", "0005_html_digest"),
    ("finetuning", "0003_job_queue_and_sends"),
    ("preferences", "0002_deployment_feedback"),
]
AFTER = [
    ("annotation", "0007_moved_to_core"),
    ("finetuning", "0005_moved_to_core"),
    ("preferences", "0004_moved_to_core"),
    ("core", "0001_initial"),
]
# (app before, app after, model): every table the move concerns, and the ones pointing at them.
TABLES = [
    ("annotation", "core", "Project"),
    ("annotation", "core", "Membership"),
    ("finetuning", "core", "ModelVersion"),
    ("finetuning", "core", "Job"),
    ("preferences", "core", "DatasetSnapshot"),
    ("annotation", "annotation", "Prompt"),
    ("annotation", "annotation", "Task"),
    ("annotation", "annotation", "Candidate"),
    ("annotation", "annotation", "Assignment"),
    ("annotation", "annotation", "Ranking"),
    ("finetuning", "finetuning", "Round"),
    ("preferences", "preferences", "DeploymentFeedback"),
]
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
QUIET = ("BEGIN;", "COMMIT;")


def _fill(apps) -> None:
    """One row or more in every table, every foreign key set (historical models only)."""
    get = apps.get_model
    user = get("auth", "User").objects.create(username="ann", password="x")
    project = get("annotation", "Project").objects.create(
        name="P", guidelines="**be kind**", candidates_per_task=2, annotations_per_task=1
    )
    get("annotation", "Membership").objects.create(project=project, user=user, role="admin")
    job = get("finetuning", "Job").objects.create(
        project=project, kind="build_dataset", params={"min_votes": 1}, status="failed",
        created_by=user, metric_history=[{"step": 1, "loss": 0.5}], started_at=NOW,
    )  # fmt: skip
    retry = get("finetuning", "Job").objects.create(
        project=project, kind="build_dataset", params={}, retry_of=job
    )
    snapshot = get("preferences", "DatasetSnapshot").objects.create(
        project=project, content_hash="h" * 64, policy={"min_votes": 1}, test_fraction=0.1,
        seed=0, path="/tmp/s", format="standard", counts={"train": 1}, job=retry,
    )  # fmt: skip
    base = get("finetuning", "ModelVersion").objects.create(
        project=project, kind="policy", name="base", weights="/m/base", is_active=True
    )
    child = get("finetuning", "ModelVersion").objects.create(
        project=project, kind="policy", name="dpo", weights="/m/dpo", parent=base, job=job,
        snapshot=snapshot, metrics={"win_rate": 0.6},
    )  # fmt: skip
    rnd = get("finetuning", "Round").objects.create(project=project, number=1, job=job)
    rnd.model_versions.set([base, child])
    prompt = get("annotation", "Prompt").objects.create(
        project=project, text="Hi", content_hash="p" * 64, metadata={"k": [1, 2]},
        html=["<p>Hi</p>"], render_version=1, html_digest="d" * 32,
    )  # fmt: skip
    task = get("annotation", "Task").objects.create(
        project=project, prompt=prompt, round=1, target_annotations=1, submitted_count=1
    )
    a = get("annotation", "Candidate").objects.create(
        task=task, text="a", source="base", model_version=base, position=0
    )
    b = get("annotation", "Candidate").objects.create(
        task=task, text="b", source="dpo", model_version=child, position=1
    )
    lease = get("annotation", "Assignment").objects.create(
        task=task, annotator=user, status="submitted", leased_at=NOW, expires_at=NOW,
        display_order=[b.pk, a.pk],
    )  # fmt: skip
    get("annotation", "Ranking").objects.create(
        task=task, annotator=user, assignment=lease, groups=[[b.pk], [a.pk]],
        display_order=[b.pk, a.pk], rationale="b is better", time_spent_ms=1200,
        payload_hash="x" * 64,
    )  # fmt: skip
    get("preferences", "DeploymentFeedback").objects.create(
        project=project, kind="thumbs", source="prod", prompt_text="Hi", prompt_hash="p" * 64,
        response="b", rating="up", model_version=child, created_by=user,
    )  # fmt: skip


def _rows(apps, app: str, model: str) -> list[dict]:
    return list(apps.get_model(app, model).objects.order_by("pk").values())


def test_a_database_filled_before_the_move_to_core_keeps_every_row(migrator):
    old = migrator.apply_initial_migration(BEFORE).apps
    _fill(old)
    before = {model: _rows(old, app, model) for app, _, model in TABLES}
    old_types = {
        model: old.get_model("contenttypes", "ContentType")
        .objects.get_or_create(app_label=app, model=model.lower())[0]
        .pk
        for app, _, model in TABLES[:5]
    }

    new = migrator.apply_tested_migration(AFTER).apps

    for _, app, model in TABLES:
        assert _rows(new, app, model) == before[model], model
        assert before[model], f"{model}: the test filled nothing"
    # Relations resolve through the new state, both ways.
    child = new.get_model("core", "ModelVersion").objects.get(name="dpo")
    assert child.parent.name == "base" and child.snapshot.job.retry_of.kind == "build_dataset"
    assert {c.text for c in child.candidates.all()} == {"b"}
    project = new.get_model("core", "Project").objects.get()
    assert [m.role for m in project.memberships.all()] == ["admin"]
    assert project.prompts.get().tasks.get().rankings.get().rationale == "b is better"
    assert new.get_model("finetuning", "Round").objects.get().model_versions.count() == 2
    # Content types were renamed, not replaced: permissions and admin history still point there.
    types = new.get_model("contenttypes", "ContentType").objects
    for app, _, model in TABLES[:5]:
        assert types.get(app_label="core", model=model.lower()).pk == old_types[model]
        assert not types.filter(app_label=app, model=model.lower()).exists()


def test_the_move_to_core_runs_no_sql_but_renaming_content_types(transactional_db):
    """Each migration of the move is state only: `sqlmigrate` prints no statement."""
    from io import StringIO

    from django.core.management import call_command

    for app, name in [
        *AFTER,
        ("annotation", "0006_point_to_core"),
        ("finetuning", "0004_point_to_core"),
        ("preferences", "0003_point_to_core"),
    ]:
        out = StringIO()
        call_command("sqlmigrate", app, name, stdout=out)
        lines = [line.strip() for line in out.getvalue().splitlines()]
        statements = [x for x in lines if x and not x.startswith("--") and x not in QUIET]
        assert statements == [], (app, name, statements)


# --- job params stored flat (core 0002) ---------------------------------------------------------

NESTED = {
    "train_dpo": {"snapshot": 3, "policy": 1, "config": {"beta": 0.2, "lora_target_modules": []}},
    "train_reward": {"snapshot": 3, "base": 1, "config": {"learning_rate": 0.0001, "epochs": 1.0}},
    "evaluate": {"policy": 2, "reward": 4, "prompt_limit": None, "config": {"seed": 5}},
    "build_dataset": {"min_votes": 1, "seed": 0, "test_fraction": 0.1},  # flat already
    "generate": {"model_versions": [1], "prompt_limit": None, "temperature": 0.7},
    "promote": {"model_version": 2},
}
FLAT = {
    "train_dpo": {"snapshot": 3, "policy": 1, "beta": 0.2, "lora_target_modules": []},
    "train_reward": {"snapshot": 3, "base": 1, "learning_rate": 0.0001, "epochs": 1.0},
    "evaluate": {"policy": 2, "reward": 4, "prompt_limit": None, "seed": 5},
    "build_dataset": NESTED["build_dataset"],
    "generate": NESTED["generate"],
    "promote": NESTED["promote"],
}
FLAT_ON = ("core", "0002_job_params_flat")
NESTED_ON = ("core", "0001_initial")


def _jobs(apps, params_by_kind: dict[str, dict]) -> None:
    project = apps.get_model("core", "Project").objects.create(name="P")
    for kind, params in params_by_kind.items():
        apps.get_model("core", "Job").objects.create(project=project, kind=kind, params=params)


def _params(apps) -> dict[str, dict]:
    return {j.kind: j.params for j in apps.get_model("core", "Job").objects.order_by("pk")}


def _stamps(apps) -> list:
    return list(apps.get_model("core", "Job").objects.order_by("pk").values_list("updated_at"))


def test_job_params_stored_nested_are_stored_flat_after_the_migration(migrator):
    old = migrator.apply_initial_migration(NESTED_ON).apps
    _jobs(old, NESTED)
    stamps = _stamps(old)
    new = migrator.apply_tested_migration(FLAT_ON).apps
    assert _params(new) == FLAT
    assert _stamps(new) == stamps  # the same jobs, not touched otherwise


def test_job_params_stored_flat_are_nested_again_when_the_migration_is_reversed(migrator):
    new = migrator.apply_initial_migration(FLAT_ON).apps
    _jobs(new, FLAT)
    old = migrator.apply_tested_migration(NESTED_ON).apps
    assert _params(old) == NESTED
