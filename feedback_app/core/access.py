"""Who may do what in a project: decided here and nowhere else.

- Staff administer every project; a member with the admin role administers theirs.
- Members (either role) annotate their projects; staff who are not members do not annotate.
  Each annotation service (hand-out, submit, skip) enforces this itself.
- Whoever sees a project (members, staff) sends its deployment feedback: a deployment's service
  account needs no admin role.
- An archived project is read-only (settings, members, imports, rankings, jobs) until it is
  restored (`check_writable`).
- Only staff create projects (`check_creates_projects`; commands, run by the operator, may too);
  the services that create one (settings, archive import) enforce it themselves.
- Everyone else sees nothing of a project: 404, never revealing it exists. Pages and admin
  services ask `project_administered_or_404` / `project_annotated_or_404` (a `NotFound` the
  pages and the API both answer 404); the API says 403 to a member who sees the project but
  does not administer it (`project_administered`).
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
from feedback_app.common.errors import Conflict, NotAllowed, NotFound, Problem

from .audit import Origin
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


def may_create_projects(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def check_creates_projects(origin: Origin | None) -> None:
    """Only staff create projects; a command (or the system: None) acts as the operator."""
    if (
        origin is not None
        and not origin.trusted
        and (origin.user is None or not may_create_projects(origin.user))
    ):
        raise NotAllowed("only staff create projects")


def check_administers(origin: Origin | None, project: Project) -> None:
    """The services' own check (a page or API view asked `project_administered*` already):
    a person who does not administer `project` is told it does not exist."""
    if origin is None or origin.trusted:
        return
    if origin.user is None or not is_project_admin(origin.user, project):
        _found(None)


def _found(project: Project | None) -> Project:
    """The one "else 404": the same answer whether the project exists or is not theirs."""
    if project is None:
        raise NotFound("No such project")
    return project


def project_administered_or_404(user: AbstractBaseUser, project_id: int) -> Project:
    """A project `user` administers; NotFound (404) otherwise, whether it exists or not."""
    return _found(projects_administered_by(user).filter(pk=project_id).first())


def project_annotated_or_404(user: AbstractBaseUser, project_id: int) -> Project:
    """A project `user` annotates (`project_to_annotate`, one statement); NotFound otherwise."""
    return _found(project_to_annotate(user, project_id))


def project_visible_or_404(user: AbstractBaseUser, project_id: int) -> Project:
    return _found(projects_visible_to(user).filter(pk=project_id).first())


def project_administered(user: AbstractBaseUser, project_id: int) -> Project:
    """The API's admin actions: 404 if `user` cannot see the project, 403 if they only
    annotate it (they know it exists)."""
    project = project_visible_or_404(user, project_id)
    if not is_project_admin(user, project):
        raise NotAllowed("only admins of this project may do this")
    return project


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
               pr.lease_seconds, pr.archived, pr.judge_triage
        FROM {table(Project)} pr
        WHERE pr.id = %(project)s AND {member_sql(project="pr.id", user="%(user)s")}"""
    row = fetchone(sql, sql_params(project=project_id, user=user.pk))
    if row is None:
        return None
    (pk, created_at, name, guidelines, k, overlap, rationale, demonstrations, gold_rate,
     lease_seconds, archived, triage) = row  # fmt: skip
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
        judge_triage=bool(triage),  # the hand-out's order
    )


def check_writable(project: Project) -> None:
    """Archived projects are read-only until restored."""
    if project.archived:
        raise Conflict(Problem("archived", "this project is archived: restore it to change it"))


def reward_models_served_to(user: AbstractBaseUser) -> QuerySet[ModelVersion]:
    """The reward models `user` may score with over HTTP (`/get_reward`): those of the projects
    they administer, as with every model version; to anyone else they do not exist."""
    return ModelVersion.objects.filter(
        kind=ModelVersion.Kind.REWARD, project__in=projects_administered_by(user)
    )
