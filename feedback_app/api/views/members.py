"""A project's members (list, add, change role, remove), invitations by e-mail (send, revoke), and
deactivating an account. The rules are `workspace/members.py`'s; these only parse and answer."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.core import access
from feedback_app.core.audit import Origin
from feedback_app.core.models import Judge, Membership
from feedback_app.workspace import judges, members

from .. import permissions
from ..parsers import refuse_unreadable_body
from ..serializers.common import StrictCharField

ROLE = serializers.ChoiceField(choices=Membership.Role.choices)


class MemberSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    is_active = serializers.BooleanField(source="user.is_active", help_text="Can sign in.")
    invited = serializers.SerializerMethodField(help_text="Has not set a password yet.")
    joined = serializers.DateTimeField(source="created_at")

    def get_invited(self, membership: Membership) -> bool:
        return not membership.user.has_usable_password()


class MemberAddSerializer(serializers.Serializer):
    user = StrictCharField(max_length=254, help_text="Username or e-mail of an active account.")
    role = serializers.ChoiceField(choices=Membership.Role.choices, default="annotator")


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default="annotator")


class AccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_active = serializers.BooleanField()


def _input(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ProjectMembersApi(APIView):
    """A project's members (its admins only); add an existing account with a role."""

    @extend_schema(
        responses={200: MemberSerializer(many=True)}, operation_id="projects_members_list"
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        return Response(MemberSerializer(members.members_of(project), many=True).data)

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: MemberSerializer},
        operation_id="projects_members_add",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        data = _input(MemberAddSerializer, request)
        user = members.user_find(data["user"])
        membership = members.member_add(
            project=project, user=user, role=data["role"], origin=Origin.of(request)
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class ProjectMemberApi(APIView):
    """One member: change their role, or remove them (their rankings stay)."""

    def _membership(self, request: Request, project_id: int, user_id: int) -> Membership:
        project = permissions.administered_project(request.user, project_id)
        return get_object_or_404(
            Membership.objects.select_related("user", "project"), project=project, user_id=user_id
        )

    @extend_schema(
        request=MemberRoleSerializer,
        responses={200: MemberSerializer},
        operation_id="projects_members_role",
    )
    def patch(self, request: Request, project_id: int, user_id: int) -> Response:
        membership = self._membership(request, project_id, user_id)
        data = _input(MemberRoleSerializer, request)
        membership = members.member_role_set(
            membership=membership, role=data["role"], origin=Origin.of(request)
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None}, operation_id="projects_members_remove")
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        membership = self._membership(request, project_id, user_id)
        members.member_remove(membership=membership, origin=Origin.of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationsApi(APIView):
    """Invite someone by e-mail: an account without a password joins the project with the role,
    and the address gets a one-time link to set its password."""

    @extend_schema(
        request=InvitationSerializer,
        responses={201: MemberSerializer},
        operation_id="projects_invitations_send",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        data = _input(InvitationSerializer, request)
        membership = members.invitation_send(
            project=project,
            email=data["email"],
            role=data["role"],
            origin=Origin.of(request),
            absolute=request.build_absolute_uri,
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class InvitationApi(APIView):
    """Revoke a pending invitation (the invitee has not set a password yet): they leave the
    project and, unless another project still invites them, their link stops working (410)."""

    @extend_schema(responses={204: None}, operation_id="projects_invitations_revoke")
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        membership = get_object_or_404(
            Membership.objects.select_related("user", "project"), project=project, user_id=user_id
        )
        members.invitation_revoke(membership=membership, origin=Origin.of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _account(request: Request, user_id: int):  # noqa: ANN202
    """An account the caller administers a project of (staff: any), else 404."""
    users = get_user_model().objects.all()
    if not request.user.is_staff:
        users = users.filter(
            memberships__project__in=access.projects_administered_by(request.user)
        ).distinct()
    return get_object_or_404(users, pk=user_id)


class AccountDeactivateApi(APIView):
    """Deactivate an account: it cannot sign in, its API tokens go, its rankings stay.
    Staff may; a project admin may for a plain member of only projects they administer."""

    @extend_schema(
        request=None, responses={200: AccountSerializer}, operation_id="users_deactivate"
    )
    def post(self, request: Request, user_id: int) -> Response:
        refuse_unreadable_body(request)
        user = members.account_deactivate(
            user=_account(request, user_id), origin=Origin.of(request)
        )
        return Response(AccountSerializer(user).data)


class AccountReactivateApi(APIView):
    """Let a deactivated account sign in again (by the same rule)."""

    @extend_schema(
        request=None, responses={200: AccountSerializer}, operation_id="users_reactivate"
    )
    def post(self, request: Request, user_id: int) -> Response:
        refuse_unreadable_body(request)
        user = members.account_deactivate(
            user=_account(request, user_id), origin=Origin.of(request), active=True
        )
        return Response(AccountSerializer(user).data)


class JudgeSerializer(serializers.Serializer):
    """An AI member; the key is never here: the environment variable it is read from, or
    whether a sealed key is stored."""

    id = serializers.IntegerField(read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    name = serializers.CharField(source="user.username", read_only=True)
    kind = serializers.ChoiceField(choices=Judge.Kind.choices, read_only=True)
    weights = serializers.CharField(read_only=True)
    model_version = serializers.IntegerField(source="model_version_id", read_only=True)
    base_url = serializers.CharField(read_only=True)
    model_name = serializers.CharField(read_only=True)
    api_key_env = serializers.CharField(read_only=True)
    has_api_key = serializers.SerializerMethodField()
    template = serializers.CharField(read_only=True)
    mode = serializers.CharField(read_only=True)
    tie_threshold = serializers.FloatField(read_only=True)
    unsure_margin = serializers.FloatField(read_only=True)

    def get_has_api_key(self, judge: Judge) -> bool:
        """A sealed key is stored (the key itself is never answered)."""
        return bool(judge.api_key_sealed)


class JudgeAddSerializer(serializers.Serializer):
    name = StrictCharField(max_length=150)
    kind = serializers.ChoiceField(choices=Judge.Kind.choices)
    weights = StrictCharField(max_length=500, required=False, default="", allow_blank=True)
    model_version = serializers.IntegerField(required=False, allow_null=True, default=None)
    base_url = StrictCharField(max_length=500, required=False, default="", allow_blank=True)
    model_name = StrictCharField(max_length=200, required=False, default="", allow_blank=True)
    api_key_env = StrictCharField(
        max_length=100, required=False, default="", allow_blank=True,
        help_text="Name of the environment variable the workers read the key from.",
    )  # fmt: skip
    api_key = StrictCharField(
        max_length=1_000, required=False, default="", allow_blank=True, write_only=True,
        trim_whitespace=False, style={"input_type": "password"},
        help_text="The key itself, instead of api_key_env: stored sealed, never shown again.",
    )  # fmt: skip
    template = StrictCharField(max_length=20_000, required=False, default="", allow_blank=True)
    mode = serializers.ChoiceField(choices=judges.MODES, default="logprobs")
    tie_threshold = serializers.FloatField(default=0.0)
    unsure_margin = serializers.FloatField(
        default=0.0, help_text="Triage: a pair with a smaller |margin| is unsure (judge units)."
    )


class ProjectJudgesApi(APIView):
    """A project's AI judges (its admins only), listed apart from its people; add one."""

    @extend_schema(responses={200: JudgeSerializer(many=True)}, operation_id="projects_judges_list")
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        return Response(JudgeSerializer(judges.judges_of(project), many=True).data)

    @extend_schema(
        request=JudgeAddSerializer,
        responses={201: JudgeSerializer},
        operation_id="projects_judges_add",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        spec = judges.JudgeSpec(**_input(JudgeAddSerializer, request))
        judge = judges.judge_add(project=project, spec=spec, origin=Origin.of(request))
        return Response(JudgeSerializer(judge).data, status=status.HTTP_201_CREATED)
