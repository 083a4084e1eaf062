"""Project and Membership now live in core.

State only: the table stays, with every row, as core's (core 0001).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0006_point_to_core"),
        ("finetuning", "0005_moved_to_core"),
        ("preferences", "0004_moved_to_core"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="Membership"),
                migrations.DeleteModel(name="Project"),
            ],
        )
    ]
