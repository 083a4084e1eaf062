"""The loop, for project admins: dataset snapshots, jobs and model versions."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from feedback_app.common.storable import ID_PATTERN
from feedback_app.core.artifacts import local_folder
from feedback_app.core.audit import Origin
from feedback_app.core.models import DatasetSnapshot, Job, ModelVersion
from feedback_app.finetuning import jobs, services, versions

from .. import permissions
from ..filters import JobFilter, ListFilterBackend, ModelVersionFilter
from ..pagination import NewestFirstPagination
from ..parsers import JSONParser, refuse_unreadable_body
from ..serializers.loop import (
    JobCreateSerializer,
    JobSerializer,
    ModelVersionSerializer,
    PromoteSerializer,
    SnapshotCreateSerializer,
    SnapshotSerializer,
)


class _AdminResource(viewsets.GenericViewSet):
    """Objects of the projects the user administers; others are not found."""

    permission_classes = [IsAuthenticated, permissions.AdministersAProject]
    pagination_class = NewestFirstPagination
    parser_classes = [JSONParser]
    lookup_value_regex = ID_PATTERN
    model: type

    def get_queryset(self) -> QuerySet:
        return self.model.objects.filter(
            project__in=permissions.administered_projects(self.request.user)
        )


# --- snapshots -----------------------------------------------------------------------------


@extend_schema_view(get=extend_schema(operation_id="projects_snapshots_list"))
class ProjectSnapshotsApi(generics.ListAPIView):
    """A project's dataset snapshots, newest first; POST starts a build_dataset job."""

    serializer_class = SnapshotSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet[DatasetSnapshot]:
        project = permissions.administered_project(self.request.user, self.kwargs["project_id"])
        return DatasetSnapshot.objects.filter(project=project)

    @extend_schema(
        request=SnapshotCreateSerializer,
        responses={202: JobSerializer},
        operation_id="projects_snapshots_create",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        job = services.job_launch(
            project=project,
            kind=Job.Kind.BUILD_DATASET,
            params=request.data,
            origin=Origin.of(request),
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class SnapshotViewSet(mixins.RetrieveModelMixin, _AdminResource):
    serializer_class = SnapshotSerializer
    model = DatasetSnapshot

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "split", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["train", "test"]
            )
        ],
        responses={
            (200, "application/jsonl"): OpenApiResponse(
                response={"type": "string"}, description="The split's pairs, one row a line."
            )
        },
    )
    @action(detail=True, methods=["get"], url_path=r"files/(?P<split>train|test)")
    def files(self, request: Request, pk: int, split: str) -> FileResponse:
        """Download train.jsonl or test.jsonl of the snapshot."""
        snapshot = self.get_object()
        path = local_folder(snapshot.path) / f"{split}.jsonl"
        if not path.is_file():
            raise NotFound(f"{split}.jsonl of this snapshot is missing on the server")
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"{snapshot.content_hash[:12]}-{split}.jsonl",
            content_type="application/jsonl",
        )


# --- jobs ----------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(request=JobCreateSerializer, responses={201: JobSerializer}),
)
class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _AdminResource
):
    """Jobs of any kind; `params` are checked by the same rules as the loop page's forms."""

    serializer_class = JobSerializer
    model = Job
    filter_backends = [ListFilterBackend]
    filterset_class = JobFilter

    def create(self, request: Request) -> Response:
        data = JobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = permissions.administered_project(request.user, data.validated_data["project"])
        job = services.job_launch(
            project=project,
            kind=data.validated_data["kind"],
            params=data.validated_data["params"],
            origin=Origin.of(request),
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: int) -> Response:
        """Cancel a queued job at once; ask a running one to stop (409 if already finished)."""
        refuse_unreadable_body(request)
        job = jobs.job_cancel(job=self.get_object(), origin=Origin.of(request))
        return Response(JobSerializer(job).data)

    @extend_schema(request=None, responses={201: JobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: int) -> Response:
        """A new job with the same kind and parameters as a failed or cancelled one."""
        refuse_unreadable_body(request)
        job = services.job_retry(job=self.get_object(), origin=Origin.of(request))
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


# --- model versions ------------------------------------------------------------------------


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _AdminResource):
    serializer_class = ModelVersionSerializer
    model = ModelVersion
    filter_backends = [ListFilterBackend]
    filterset_class = ModelVersionFilter

    @extend_schema(request=PromoteSerializer, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk: int) -> Response:
        """Make this version the active one of its kind (the next round generates with it).

        A policy that lost to its parent, or whose win rate's interval includes 0.5, needs
        `{"confirm": true}`; without it the answer is a 400 naming `confirm` and saying why."""
        version = self.get_object()
        data = PromoteSerializer(data=request.data if request.body else {})
        data.is_valid(raise_exception=True)
        version = versions.model_promote_confirmed(
            version=version, confirm=data.validated_data["confirm"], origin=Origin.of(request)
        )
        return Response(ModelVersionSerializer(version).data)
