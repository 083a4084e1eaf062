from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "feedback_app.common"
    label = "common"
