"""Who reaches what through the API, decided here on top of `core.access`.

Every view gets its objects through these querysets, so an object of a project the user
cannot see is simply not found (404, its existence is not revealed); a project the user sees
but may not administer answers 403 to an admin action.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from rest_framework.permissions import BasePermission

from feedback_app.core import access as rules
from feedback_app.core.models import AuditEvent, ModelVersion, Project


def visible_projects(user: AbstractBaseUser) -> QuerySet[Project]:
    return rules.projects_visible_to(user)


def administered_projects(user: AbstractBaseUser) -> QuerySet[Project]:
    return rules.projects_administered_by(user)


def visible_audit_events(user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    return rules.audit_events_visible_to(user)


def visible_project(user: AbstractBaseUser, project_id: int) -> Project:
    """A project the user sees (member or staff), else 404."""
    return rules.project_visible_or_404(user, project_id)


def administered_project(user: AbstractBaseUser, project_id: int) -> Project:
    """A project the user administers; 404 if they cannot see it, 403 if they only annotate it."""
    return rules.project_administered(user, project_id)


class IsStaffToCreate(BasePermission):
    """Only staff create projects; a project's admins edit it (checked per object)."""

    message = "only staff create projects"

    def has_permission(self, request, view) -> bool:
        if request.method == "POST" and getattr(view, "action", "create") == "create":
            return bool(request.user) and rules.may_create_projects(request.user)
        return True

    def has_object_permission(self, request, view, obj: Project) -> bool:
        if request.method in ("PUT", "PATCH"):
            self.message = "only admins of this project may edit it"
            return rules.is_project_admin(request.user, obj)
        return True


class AdministersAProject(BasePermission):
    """For cross-project admin lists (rankings, jobs, versions, the audit log): admins of at
    least one."""

    message = "only project admins may list these"

    def has_permission(self, request, view) -> bool:
        return bool(request.user) and rules.administers_a_project(request.user)


def served_reward_model(user: AbstractBaseUser, version_id: int) -> ModelVersion:
    """A reward model version `user` may score with (`/get_reward`), else 404: a policy, a
    version of a project they do not administer and a missing one look the same."""
    return get_object_or_404(rules.reward_models_served_to(user), pk=version_id)
