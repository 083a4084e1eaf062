from django.apps import AppConfig


class FinetuningConfig(AppConfig):
    name = "feedback_app.finetuning"
    label = "finetuning"
