from django.contrib import admin
from django.urls import include, path

from feedback_app.annotation import views as annotation_views
from feedback_app.common.views import healthz

# Ids in URLs are `<id:...>` (common/converters.py, registered in CommonConfig.ready), never
# `<int:...>`: a 30-digit id must be a 404, not an overflow in SQL.
urlpatterns = [
    path("", annotation_views.home, name="home"),
    path("", include("feedback_app.annotation.urls")),
    path("", include("feedback_app.workspace.urls")),
    path("", include("feedback_app.finetuning.urls")),
    path("", include("feedback_app.accounts.urls")),
    path("", include("feedback_app.preferences.urls")),
    path("", include("feedback_app.core.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("feedback_app.api.urls")),
    path("healthz", healthz, name="healthz"),
]
