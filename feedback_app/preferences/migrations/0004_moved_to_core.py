"""DatasetSnapshot now lives in core.

State only: the table stays, with every row, as core's (core 0001).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("preferences", "0003_point_to_core"),
        ("finetuning", "0004_point_to_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="DatasetSnapshot")],
        )
    ]
