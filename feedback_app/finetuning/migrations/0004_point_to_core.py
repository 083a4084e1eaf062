"""The loop's rounds point at the model versions and jobs that moved to core.

State only (`SeparateDatabaseAndState` with no database operation): the tables and every row stay
as they are; see core 0001.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("finetuning", "0003_job_queue_and_sends"), ("core", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                # core.ModelVersion holds this link now; dropped here first so that the old
                # DatasetSnapshot can leave preferences' state before ModelVersion leaves ours.
                migrations.RemoveField(model_name="modelversion", name="snapshot"),
                migrations.AlterField(
                    model_name="round",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rounds",
                        to="core.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="round",
                    name="job",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="core.job",
                    ),
                ),
                migrations.AlterField(
                    model_name="round",
                    name="model_versions",
                    field=models.ManyToManyField(
                        blank=True, related_name="rounds", to="core.modelversion"
                    ),
                ),
            ],
        )
    ]
