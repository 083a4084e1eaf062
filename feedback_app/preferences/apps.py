from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    name = "feedback_app.preferences"
    label = "preferences"

    def ready(self) -> None:
        """Ranking drops, more-votes requests and deployment feedback travel in a project's
        archive: the workspace below cannot name these models, so they are handed to it."""
        from feedback_app.workspace.archive import USER, Table, table_register

        from .models import DeploymentFeedback, MoreVotesRequest, RankingDrop

        drops = Table(
            "ranking_drops.jsonl",
            RankingDrop,
            scope="ranking__task__project",
            refs={"ranking": "rankings", "dropped_by": USER},
        )
        more_votes = Table(
            "more_votes.jsonl",
            MoreVotesRequest,
            scope="task__project",
            refs={"task": "tasks", "requested_by": USER},
        )
        feedback = Table(
            "feedback.jsonl",
            DeploymentFeedback,
            refs={"model_version": "model_versions", "created_by": USER},
        )
        table_register(drops, after="rankings.jsonl")
        table_register(more_votes, after="ranking_drops.jsonl")
        table_register(feedback, after="demonstrations.jsonl")
