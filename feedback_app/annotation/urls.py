from django.urls import path

from . import views

app_name = "annotation"
urlpatterns = [
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path(
        "projects/<int:project_id>/tasks/<int:task_id>/ranking/",
        views.submit_ranking,
        name="submit",
    ),
    path("projects/<int:project_id>/tasks/<int:task_id>/skip/", views.skip_task, name="skip"),
    path("projects/<int:project_id>/guidelines/", views.guidelines, name="guidelines"),
    path("projects/<int:project_id>/import/", views.import_prompts, name="import"),
]
