from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "feedback_app.accounts"
    label = "accounts"
