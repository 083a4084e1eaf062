from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    name = "feedback_app.preferences"
    label = "preferences"
