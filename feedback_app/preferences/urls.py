from django.urls import path

from . import views

app_name = "preferences"
urlpatterns = [
    path("projects/<id:project_id>/quality/", views.quality, name="quality"),
    path(
        "projects/<id:project_id>/quality/refresh/",
        views.quality_refresh,
        name="quality-refresh",
    ),
    path(
        "projects/<id:project_id>/quality/<str:figure>/",
        views.quality,
        name="quality-figure",
    ),
]
