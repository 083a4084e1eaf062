"""Projects get a gold rate (gold tasks, issue 12); jobs a kind that scores the review queue."""

import django.core.validators
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_project_demonstrations"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="gold_rate",
            field=models.FloatField(
                default=0.0,
                help_text=(
                    "Share of hand-outs that give a gold task the annotator has not seen (0..1)."
                ),
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[
                    ("generate", "Generate a round"),
                    ("build_dataset", "Build a dataset snapshot"),
                    ("train_reward", "Train a reward model"),
                    ("train_dpo", "Train with DPO"),
                    ("train_sft", "Train with SFT"),
                    ("train_kto", "Train with KTO"),
                    ("train_grpo", "Train with GRPO (online RL)"),
                    ("train_rloo", "Train with RLOO (online RL)"),
                    ("evaluate", "Evaluate a policy"),
                    ("promote", "Promote a model version"),
                    ("review_scores", "Score the review queue"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddConstraint(
            model_name="project",
            constraint=models.CheckConstraint(
                condition=models.Q(("gold_rate__gte", 0.0), ("gold_rate__lte", 1.0)),
                name="project_gold_rate_between_0_and_1",
            ),
        ),
    ]
