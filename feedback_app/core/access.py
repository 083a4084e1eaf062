"""Who may do what in a project: decided here and nowhere else.

- Staff administer every project; a member with the admin role administers theirs.
- Members (either role) annotate their projects; staff who are not members do not annotate.
  Each annotation service (hand-out, submit, skip) enforces this itself.
- Whoever sees a project (members, staff) sends its deployment feedback: a deployment's service
  account needs no admin role.
- Everyone else sees nothing of a project: interfaces answer 404, never revealing it exists.
- The audit log: staff read all of it; a project's admins read the events of their projects
  (not those of no project, like someone's API tokens); nobody else reads any.
- Reward models are served over HTTP to the admins of their project (and staff) only.

The hot path asks "is this user a member?" inside its own SQL statements; `member_sql` is that
rule written as SQL, once, for them to embed.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from feedback_app.common.db import aware, fetchone, instance, sql_params, table

from .models import AuditEvent, Membership, ModelVersion, Project


def member_sql(*, project: str, user: str) -> str:
    """SQL that is true when user `user` (an expression) is a member of project `project`."""
    return (
        f"EXISTS (SELECT 1 FROM {table(Membership)} member"
        f" WHERE member.project_id = {project} AND member.user_id = {user})"
    )


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


def administers_a_project(user: AbstractBaseUser) -> bool:
    """For lists across projects (rankings, jobs, versions): admins of at least one."""
    return user.is_authenticated and (
        user.is_staff or Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()
    )


def audit_events_visible_to(user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    """The audit events `user` may read (see the module's docstring)."""
    if not user.is_authenticated:
        return AuditEvent.objects.none()
    if user.is_staff:
        return AuditEvent.objects.all()
    return AuditEvent.objects.filter(project__in=projects_administered_by(user))


def projects_annotated_by(user: AbstractBaseUser) -> QuerySet[Project]:
    """Projects `user` is a member of, in either role."""
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user)


def can_annotate(user: AbstractBaseUser, project: Project) -> bool:
    return projects_annotated_by(user).filter(pk=project.pk).exists()


def projects_visible_to(user: AbstractBaseUser) -> QuerySet[Project]:
    """Members see their projects (archived ones too, read-only); staff see all."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def project_to_annotate(user: AbstractBaseUser, project_id: int) -> Project | None:
    """`projects_annotated_by` for one project, in one statement: every ranking page asks."""
    if not user.is_authenticated:
        return None
    sql = f"""
        SELECT pr.id, pr.created_at, pr.name, pr.guidelines, pr.candidates_per_task,
               pr.annotations_per_task, pr.rationale, pr.demonstrations, pr.gold_rate,
               pr.lease_seconds, pr.archived
        FROM {table(Project)} pr
        WHERE pr.id = %(project)s AND {member_sql(project="pr.id", user="%(user)s")}"""
    row = fetchone(sql, sql_params(project=project_id, user=user.pk))
    if row is None:
        return None
    (pk, created_at, name, guidelines, k, overlap, rationale, demonstrations, gold_rate,
     lease_seconds, archived) = row  # fmt: skip
    return instance(
        Project,
        id=pk,
        created_at=aware(created_at),
        name=name,
        guidelines=guidelines,
        candidates_per_task=k,
        annotations_per_task=overlap,
        rationale=rationale,
        demonstrations=bool(demonstrations),  # SQLite answers 0/1
        gold_rate=gold_rate,  # the hand-out's gold draw reads it
        lease_seconds=lease_seconds,  # and the lease length
        archived=bool(archived),  # nothing is handed out of an archived project
    )


def reward_models_served_to(user: AbstractBaseUser) -> QuerySet[ModelVersion]:
    """The reward models `user` may score with over HTTP (`/get_reward`): those of the projects
    they administer, as with every model version; to anyone else they do not exist."""
    return ModelVersion.objects.filter(
        kind=ModelVersion.Kind.REWARD, project__in=projects_administered_by(user)
    )
