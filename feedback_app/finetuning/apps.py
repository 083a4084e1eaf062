from django.apps import AppConfig


class FinetuningConfig(AppConfig):
    name = "feedback_app.finetuning"
    label = "finetuning"

    def ready(self) -> None:
        """Rounds travel in a project's archive: handed to the workspace, which sits below."""
        from feedback_app.workspace.archive import Table, table_register

        from .models import Round

        rounds = Table(
            "rounds.jsonl", Round, refs={"job": "jobs"}, ids={"model_versions": "model_versions"}
        )
        table_register(rounds, after="model_versions.jsonl")
