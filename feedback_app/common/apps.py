from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "feedback_app.common"
    label = "common"

    def ready(self) -> None:
        from django.urls import register_converter

        from .auth import connect_signals
        from .converters import IdConverter

        connect_signals()
        # Before any URL conf is read (they are read on the first request or reverse).
        register_converter(IdConverter, "id")
