from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "feedback_app.core"
    label = "core"
