from django.urls import path

from . import views

app_name = "finetuning"
urlpatterns = [
    path("projects/<int:project_id>/loop/", views.loop, name="loop"),
    path("projects/<int:project_id>/loop/<str:kind>/", views.launch, name="launch"),
    path("projects/<int:project_id>/models/", views.model_list, name="models"),
    path(
        "projects/<int:project_id>/models/<int:version_id>/promote/",
        views.model_promote,
        name="promote",
    ),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/status/", views.job_status, name="job-status"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/retry/", views.job_retry, name="job-retry"),
]
