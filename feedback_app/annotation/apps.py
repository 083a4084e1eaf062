from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "feedback_app.annotation"
    label = "annotation"
