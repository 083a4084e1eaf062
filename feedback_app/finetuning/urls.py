from django.urls import path

from . import playground_views, views

app_name = "finetuning"
urlpatterns = [
    path("projects/<id:project_id>/loop/", views.loop, name="loop"),
    path(
        "projects/<id:project_id>/autopilot/",
        views.autopilot_settings,
        name="autopilot",
    ),
    path(
        "projects/<id:project_id>/autopilot/<str:action>/",
        views.autopilot_pause,
        name="autopilot-pause",
    ),
    path("projects/<id:project_id>/loop/<str:kind>/", views.launch, name="launch"),
    path("projects/<id:project_id>/models/", views.model_list, name="models"),
    path(
        "projects/<id:project_id>/models/<id:version_id>/promote/",
        views.model_promote,
        name="promote",
    ),
    path("projects/<id:project_id>/playground/", playground_views.playground, name="playground"),
    path(
        "projects/<id:project_id>/playground/answer/",
        playground_views.playground_answer,
        name="playground-answer",
    ),
    path(
        "projects/<id:project_id>/playground/feedback/",
        playground_views.playground_feedback,
        name="playground-feedback",
    ),
    path("projects/<id:project_id>/rounds/", views.rounds, name="rounds"),
    path("projects/<id:project_id>/review/", views.review, name="review"),
    path("jobs/", views.jobs_running, name="jobs"),
    path("jobs/<id:job_id>/", views.job_detail, name="job"),
    path("jobs/<id:job_id>/status/", views.job_status, name="job-status"),
    path("jobs/<id:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<id:job_id>/retry/", views.job_retry, name="job-retry"),
]
