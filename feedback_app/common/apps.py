from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "feedback_app.common"
    label = "common"

    def ready(self) -> None:
        from .auth import connect_signals

        connect_signals()
