"""Who may do what in a project: decided here and nowhere else."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from feedback_app.core.models import Membership, Project

from . import sql


def projects_administered_by(user: AbstractBaseUser) -> QuerySet[Project]:
    """Staff administer every project; others only where their membership says admin."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.ADMIN
    ).distinct()


def is_project_admin(user: AbstractBaseUser, project: Project) -> bool:
    return projects_administered_by(user).filter(pk=project.pk).exists()


def can_annotate(user: AbstractBaseUser, project: Project) -> bool:
    """Members of a project (either role) annotate it; staff who are not members do not."""
    return projects_to_annotate(user).filter(pk=project.pk).exists()


def projects_to_annotate(user: AbstractBaseUser) -> QuerySet[Project]:
    """Projects `user` is a member of, in either role."""
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user)


def project_to_annotate(user: AbstractBaseUser, project_id: int) -> Project | None:
    """The project if `user` is a member (either role): `projects_to_annotate` for one project,
    in one hand-written statement because every ranking page asks (see annotation/sql.py)."""
    if not user.is_authenticated:
        return None
    return sql.project_for_member(project_id=project_id, annotator_id=user.pk)


def projects_visible_to(user: AbstractBaseUser) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()
