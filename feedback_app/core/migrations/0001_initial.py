"""Projects, memberships, model versions, jobs and dataset snapshots move into `core`.

Django's state only: each model keeps the table it had (`db_table`), so no row is touched. The
source apps' "moved to core" migrations point their foreign keys here and drop the models from
their own state; `tests/test_migrations.py` migrates a filled database across this on both
backends and finds every row intact.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = [
    ("annotation", "project"),
    ("annotation", "membership"),
    ("finetuning", "modelversion"),
    ("finetuning", "job"),
    ("preferences", "datasetsnapshot"),
]


def content_types_to_core(apps, schema_editor):
    """Permissions and admin log entries follow their content type, so rename it, not add one."""
    content_type = apps.get_model("contenttypes", "ContentType")
    for app_label, model in MOVED:
        content_type.objects.filter(app_label=app_label, model=model).update(app_label="core")


def content_types_back(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    for app_label, model in MOVED:
        content_type.objects.filter(app_label="core", model=model).update(app_label=app_label)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        # The tables exist: created by these apps' migrations before the move.
        ("annotation", "0005_html_digest"),
        ("finetuning", "0003_job_queue_and_sends"),
        ("preferences", "0002_deployment_feedback"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Job",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("generate", "Generate a round"),
                                    ("build_dataset", "Build a dataset snapshot"),
                                    ("train_reward", "Train a reward model"),
                                    ("train_dpo", "Train with DPO"),
                                    ("evaluate", "Evaluate a policy"),
                                    ("promote", "Promote a model version"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("params", models.JSONField(blank=True, default=dict)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                default="queued",
                                max_length=16,
                            ),
                        ),
                        ("progress", models.FloatField(default=0.0, help_text="0..1")),
                        ("progress_note", models.CharField(blank=True, max_length=200)),
                        ("metric_history", models.JSONField(blank=True, default=list)),
                        ("log_tail", models.TextField(blank=True)),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("error", models.TextField(blank=True)),
                        ("traceback", models.TextField(blank=True)),
                        ("outputs", models.JSONField(blank=True, default=dict)),
                        ("cancel_requested", models.BooleanField(default=False)),
                        ("worker", models.CharField(blank=True, max_length=200)),
                        ("queue", models.CharField(blank=True, max_length=100)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("send_count", models.PositiveSmallIntegerField(default=0)),
                        ("worker_queues", models.CharField(blank=True, max_length=500)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "retry_of",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="retries",
                                to="core.job",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "finetuning_job",
                        "ordering": ["-id"],
                    },
                ),
                migrations.CreateModel(
                    name="DatasetSnapshot",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("content_hash", models.CharField(max_length=64)),
                        (
                            "policy",
                            models.JSONField(help_text="The PairPolicy that chose the pairs."),
                        ),
                        ("test_fraction", models.FloatField()),
                        ("seed", models.IntegerField()),
                        (
                            "path",
                            models.CharField(
                                help_text="Folder holding train.jsonl and test.jsonl.",
                                max_length=500,
                            ),
                        ),
                        (
                            "format",
                            models.CharField(help_text="standard or conversational", max_length=20),
                        ),
                        ("counts", models.JSONField(default=dict)),
                        ("rankings_through", models.BigIntegerField(default=0)),
                        (
                            "job",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="core.job",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "preferences_datasetsnapshot",
                        "ordering": ["-id"],
                    },
                ),
                migrations.CreateModel(
                    name="Membership",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "role",
                            models.CharField(
                                choices=[("admin", "Admin"), ("annotator", "Annotator")],
                                default="annotator",
                                max_length=16,
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_membership",
                    },
                ),
                migrations.CreateModel(
                    name="Project",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("name", models.CharField(max_length=200, unique=True)),
                        (
                            "guidelines",
                            models.TextField(blank=True, help_text="Markdown shown to annotators."),
                        ),
                        (
                            "candidates_per_task",
                            models.PositiveSmallIntegerField(
                                default=4,
                                validators=[
                                    django.core.validators.MinValueValidator(2),
                                    django.core.validators.MaxValueValidator(8),
                                ],
                            ),
                        ),
                        (
                            "annotations_per_task",
                            models.PositiveSmallIntegerField(
                                default=3,
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(50),
                                ],
                            ),
                        ),
                        (
                            "rationale",
                            models.CharField(
                                choices=[("optional", "Optional"), ("required", "Required")],
                                default="optional",
                                max_length=16,
                            ),
                        ),
                        (
                            "members",
                            models.ManyToManyField(
                                related_name="projects",
                                through="core.Membership",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_project",
                        "ordering": ["id"],
                    },
                ),
                migrations.CreateModel(
                    name="ModelVersion",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "kind",
                            models.CharField(
                                choices=[("policy", "Policy"), ("reward", "Reward model")],
                                max_length=16,
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("weights", models.CharField(max_length=500)),
                        ("metrics", models.JSONField(blank=True, default=dict)),
                        ("is_active", models.BooleanField(default=False)),
                        (
                            "job",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="core.job",
                            ),
                        ),
                        (
                            "parent",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="children",
                                to="core.modelversion",
                            ),
                        ),
                        (
                            "snapshot",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="model_versions",
                                to="core.datasetsnapshot",
                            ),
                        ),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="model_versions",
                                to="core.project",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "finetuning_modelversion",
                        "ordering": ["-id"],
                    },
                ),
                migrations.AddField(
                    model_name="membership",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="core.project",
                    ),
                ),
                migrations.AddField(
                    model_name="job",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="jobs",
                        to="core.project",
                    ),
                ),
                migrations.AddField(
                    model_name="datasetsnapshot",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="snapshots",
                        to="core.project",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("candidates_per_task__gte", 2), ("candidates_per_task__lte", 8)
                        ),
                        name="project_k_between_2_and_8",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="project",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("annotations_per_task__gte", 1)),
                        name="project_overlap_positive",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="modelversion",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("is_active", True)),
                        fields=("project", "kind"),
                        name="one_active_version_per_kind",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="modelversion",
                    constraint=models.UniqueConstraint(
                        fields=("project", "name"), name="version_name_unique"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.UniqueConstraint(
                        fields=("project", "user"), name="membership_once_per_project"
                    ),
                ),
                migrations.AddIndex(
                    model_name="job",
                    index=models.Index(
                        fields=["status", "heartbeat_at"], name="finetuning__status_4af96f_idx"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="datasetsnapshot",
                    constraint=models.UniqueConstraint(
                        fields=("project", "content_hash"), name="snapshot_unique_content"
                    ),
                ),
            ],
        ),
        migrations.RunPython(content_types_to_core, content_types_back),
    ]
