"""Routes under /api/v1/; anything else there answers a JSON 404."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from .errors import not_found
from .views import (
    annotation,
    archive,
    audit,
    autopilot,
    feedback,
    index,
    loop,
    members,
    pairs,
    projects,
    quality,
    rankings,
    review,
    reward_models,
    rounds,
    tokens,
)

app_name = "api"

router = SimpleRouter()
router.register("projects", projects.ProjectViewSet, basename="project")
router.register("rankings", rankings.RankingViewSet, basename="ranking")
router.register("snapshots", loop.SnapshotViewSet, basename="snapshot")
router.register("jobs", loop.JobViewSet, basename="job")
router.register("model-versions", loop.ModelVersionViewSet, basename="model-version")
router.register("audit", audit.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("", index.ApiIndexApi.as_view(), name="index"),
    path("", include(router.urls)),
    path(
        "projects/<id:project_id>/prompts/",
        projects.PromptImportApi.as_view(),
        name="prompts-import",
    ),
    path(
        "projects/<id:project_id>/tasks/next/",
        annotation.NextTaskApi.as_view(),
        name="task-next",
    ),
    path(
        "tasks/<id:task_id>/ranking/", annotation.RankingSubmitApi.as_view(), name="ranking-submit"
    ),
    path("tasks/<id:task_id>/skip/", annotation.SkipApi.as_view(), name="task-skip"),
    path(
        "reward-models/<id:version_id>/get_reward",
        reward_models.GetRewardApi.as_view(),
        name="reward-model-get-reward",
    ),
    path(
        "tasks/<id:task_id>/demonstration/",
        annotation.DemonstrationSubmitApi.as_view(),
        name="demonstration-submit",
    ),
    path(
        "projects/<id:project_id>/members/",
        members.ProjectMembersApi.as_view(),
        name="project-members",
    ),
    path(
        "projects/<id:project_id>/judges/",
        members.ProjectJudgesApi.as_view(),
        name="project-judges",
    ),
    path(
        "projects/<id:project_id>/members/<id:user_id>/",
        members.ProjectMemberApi.as_view(),
        name="project-member",
    ),
    path(
        "projects/<id:project_id>/invitations/",
        members.InvitationsApi.as_view(),
        name="project-invitations",
    ),
    path(
        "projects/<id:project_id>/invitations/<id:user_id>/",
        members.InvitationApi.as_view(),
        name="project-invitation",
    ),
    path(
        "users/<id:user_id>/deactivate/",
        members.AccountDeactivateApi.as_view(),
        name="user-deactivate",
    ),
    path(
        "users/<id:user_id>/reactivate/",
        members.AccountReactivateApi.as_view(),
        name="user-reactivate",
    ),
    path("projects/<id:project_id>/pairs/", pairs.PairsApi.as_view(), name="pairs"),
    path(
        "projects/<id:project_id>/export/",
        archive.ProjectArchiveApi.as_view(),
        name="project-export",
    ),
    path(
        "projects/import-archive/",
        archive.ArchiveImportApi.as_view(),
        name="project-import-archive",
    ),
    path(
        "projects/<id:project_id>/snapshots/",
        loop.ProjectSnapshotsApi.as_view(),
        name="project-snapshots",
    ),
    path("projects/<id:project_id>/feedback/", feedback.FeedbackApi.as_view(), name="feedback"),
    path("projects/<id:project_id>/review/", review.ReviewQueueApi.as_view(), name="review"),
    path(
        "projects/<id:project_id>/review/more-votes/",
        review.MoreVotesApi.as_view(),
        name="review-more-votes",
    ),
    path(
        "projects/<id:project_id>/review/drop/",
        review.DropRankingApi.as_view(),
        name="review-drop",
    ),
    path("projects/<id:project_id>/autopilot/", autopilot.AutopilotApi.as_view(), name="autopilot"),
    path(
        "projects/<id:project_id>/autopilot/runs/",
        autopilot.AutopilotRunsApi.as_view(),
        name="autopilot-runs",
    ),
    path("auth/tokens/", tokens.TokensApi.as_view(), name="tokens"),
    path("auth/tokens/<id:token_id>/", tokens.TokenRevokeApi.as_view(), name="token-revoke"),
    path("projects/<id:project_id>/quality/", quality.QualityApi.as_view(), name="quality"),
    path(
        "projects/<id:project_id>/quality/refresh/",
        quality.QualityRefreshApi.as_view(),
        name="quality-refresh",
    ),
    path(
        "projects/<id:project_id>/quality/<str:figure>/",
        quality.QualityFigureApi.as_view(),
        name="quality-figure",
    ),
    path("projects/<id:project_id>/rounds/", rounds.RoundsApi.as_view(), name="rounds"),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="schema",
    ),
    path(
        "docs/",
        # The split view serves Swagger UI's start-up script as a file: no inline script.
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", permission_classes=[AllowAny], authentication_classes=[]
        ),
        name="docs",
    ),
    # [\s\S], not ".": a path may hold a newline (%0A), and must still get the JSON 404.
    re_path(r"^[\s\S]*$", not_found),
]
