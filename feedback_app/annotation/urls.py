from django.urls import path

from . import project_pages, views

app_name = "annotation"
urlpatterns = [
    path("projects/<id:project_id>/annotate/", views.annotate, name="annotate"),
    path(
        "projects/<id:project_id>/tasks/<id:task_id>/ranking/",
        views.submit_ranking,
        name="submit",
    ),
    path("projects/<id:project_id>/tasks/<id:task_id>/skip/", views.skip_task, name="skip"),
    path("projects/<id:project_id>/guidelines/", views.guidelines, name="guidelines"),
    path("projects/<id:project_id>/import/", views.import_prompts, name="import"),
    path("projects/<id:project_id>/tasks/<id:task_id>/gold/", views.gold_task, name="gold"),
    path("projects/new/", project_pages.project_new, name="project-new"),
    path("projects/<id:project_id>/settings/", project_pages.project_settings, name="settings"),
    path(
        "projects/<id:project_id>/settings/archive/",
        project_pages.project_archive,
        name="archive",
    ),
    path("projects/guidelines-preview/", project_pages.guidelines_preview, name="preview"),
    path("projects/<id:project_id>/members/", project_pages.project_members, name="members"),
    path(
        "projects/<id:project_id>/members/<id:user_id>/",
        project_pages.member_change,
        name="member",
    ),
    path(
        "invitation/<uidb64>/<token>/",
        project_pages.invitation_accept,
        name="invitation",
    ),
]
