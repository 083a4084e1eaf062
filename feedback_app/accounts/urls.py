from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/password/", views.password_change, name="password"),
    path("account/tokens/", views.token_new, name="token-new"),
    path("account/tokens/<id:token_id>/revoke/", views.token_delete, name="token-revoke"),
]
