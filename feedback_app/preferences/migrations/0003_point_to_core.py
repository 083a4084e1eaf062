"""Deployment feedback points at the project and model version that moved to core.

State only (`SeparateDatabaseAndState` with no database operation): the tables and every row stay
as they are; see core 0001.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("preferences", "0002_deployment_feedback"), ("core", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="deploymentfeedback",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deployment_feedback",
                        to="core.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="deploymentfeedback",
                    name="model_version",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="deployment_feedback",
                        to="core.modelversion",
                    ),
                ),
            ],
        )
    ]
