"""A project's life in pages: settings, archive, members, invitations (the routes as before)."""

from django.urls import path

from . import views

app_name = "workspace"
urlpatterns = [
    path("projects/new/", views.project_new, name="project-new"),
    path("projects/<id:project_id>/settings/", views.project_settings, name="settings"),
    path(
        "projects/<id:project_id>/settings/archive/",
        views.project_archive,
        name="archive",
    ),
    path("projects/guidelines-preview/", views.guidelines_preview, name="preview"),
    path("projects/<id:project_id>/members/", views.project_members, name="members"),
    path(
        "projects/<id:project_id>/members/<id:user_id>/",
        views.member_change,
        name="member",
    ),
    path(
        "invitation/<uidb64>/<token>/",
        views.invitation_accept,
        name="invitation",
    ),
]
