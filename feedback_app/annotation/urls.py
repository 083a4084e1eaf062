from django.urls import path

from . import views

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
]
