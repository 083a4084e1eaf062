"""Pages for admins: a project's settings (create, edit, archive, restore), its members and
invitations, and the page where an invited person sets their password. Thin: each parses a form,
calls one service (projects.py, members.py) and renders; problems land on the field they name."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from feedback_app.common.errors import ServiceError
from feedback_app.common.rendering import render_markdown
from feedback_app.core import access
from feedback_app.core.audit import Origin
from feedback_app.core.models import MAX_GUIDELINES, Membership, Project

from . import judges, members, projects
from .forms import InviteForm, MemberAddForm, ProjectForm, RoleForm


def _put_problems(form: Form, exc: ServiceError) -> None:
    for problem in exc.problems:
        field = problem.field.split(".")[-1]
        form.add_error(field if field in form.fields else None, problem.message)


def _settings_page(
    request: HttpRequest, form: ProjectForm, project: Project | None, status: int
) -> TemplateResponse:
    preview = None
    if "preview" in request.POST:
        preview = render_markdown(request.POST.get("guidelines", "")[:MAX_GUIDELINES])
    return TemplateResponse(
        request,
        "workspace/project_settings.html",
        {"form": form, "project": project, "preview": preview},
        status=status,
    )


@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    """Staff create projects (as through the API)."""
    access.check_creates_projects(Origin.of(request))  # the service checks too; this shows no form
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and "preview" not in request.POST:
        if form.is_valid():
            try:
                project = projects.project_create(
                    data=form.settings_data(), origin=Origin.of(request)
                )
            except ServiceError as exc:
                _put_problems(form, exc)
            else:
                messages.success(request, f"Project {project.name} created. Now add members.")
                return redirect("workspace:members", project_id=project.pk)
        return _settings_page(request, form, None, 400)
    return _settings_page(request, form, None, 200)


@login_required
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access.project_administered_or_404(request.user, project_id)
    form = ProjectForm(request.POST or None, instance=Project.objects.get(pk=project.pk))
    if request.method == "POST" and "preview" not in request.POST:
        if form.is_valid():
            try:
                projects.project_update(
                    project=project, data=form.settings_data(), origin=Origin.of(request)
                )
            except ServiceError as exc:
                _put_problems(form, exc)
            else:
                messages.success(request, "Settings saved.")
                return redirect("workspace:settings", project_id=project.pk)
        return _settings_page(request, form, project, 400)
    return _settings_page(request, form, project, 200)


@login_required
@require_POST
def project_archive(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access.project_administered_or_404(request.user, project_id)
    archive = "restore" not in request.POST
    projects.project_archive(project=project, archived=archive, origin=Origin.of(request))
    messages.success(request, "Project archived." if archive else "Project restored.")
    return redirect("workspace:settings", project_id=project.pk)


@login_required
@require_POST
def guidelines_preview(request: HttpRequest) -> HttpResponse:
    """The live preview's HTML: the guidelines through the one sanitiser, nothing stored."""
    if not access.administers_a_project(request.user):
        raise PermissionDenied("only project admins edit guidelines")
    html = render_markdown(request.POST.get("guidelines", "")[:MAX_GUIDELINES])
    return HttpResponse(html, content_type="text/html; charset=utf-8")


INVITE_IDS = "invite_%s"  # the add form has a `role` too: ids stay unique on the page


def _members_page(request: HttpRequest, project: Project, **forms: Form) -> TemplateResponse:
    status = 400 if any(f.errors for f in forms.values()) else 200
    context = {
        "project": project,
        "members": members.members_of(project),
        "judges": judges.judges_of(project),
        "add_form": forms.get("add_form") or MemberAddForm(),
        "invite_form": forms.get("invite_form") or InviteForm(auto_id=INVITE_IDS),
        "roles": Membership.Role.choices,
    }
    return TemplateResponse(request, "workspace/project_members.html", context, status=status)


@login_required
def project_members(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access.project_administered_or_404(request.user, project_id)
    if request.method != "POST":
        return _members_page(request, project)
    if "invite" in request.POST:
        form = InviteForm(request.POST, auto_id=INVITE_IDS)
        if form.is_valid():
            try:
                m = members.invitation_send(
                    project=project,
                    origin=Origin.of(request),
                    absolute=request.build_absolute_uri,
                    **form.cleaned_data,
                )
            except ServiceError as exc:
                _put_problems(form, exc)
            else:
                messages.success(
                    request, f"Invitation sent to {m.user.email} (username {m.user.username})."
                )
                return redirect("workspace:members", project_id=project.pk)
        return _members_page(request, project, invite_form=form)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            user = members.user_find(form.cleaned_data["user"])
            members.member_add(
                project=project,
                user=user,
                role=form.cleaned_data["role"],
                origin=Origin.of(request),
            )
        except ServiceError as exc:
            _put_problems(form, exc)
        else:
            messages.success(request, f"{user.get_username()} added.")
            return redirect("workspace:members", project_id=project.pk)
    return _members_page(request, project, add_form=form)


@login_required
@require_POST
def member_change(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    """Change a member's role, remove them, revoke their pending invitation, or (de)activate
    their account."""
    project = access.project_administered_or_404(request.user, project_id)
    membership = get_object_or_404(
        Membership.objects.select_related("user", "project"), project=project, user_id=user_id
    )
    name = membership.user.get_username()
    try:
        if "remove" in request.POST:
            members.member_remove(membership=membership, origin=Origin.of(request))
            messages.success(request, f"{name} removed; their rankings stay.")
        elif "revoke" in request.POST:
            members.invitation_revoke(membership=membership, origin=Origin.of(request))
            messages.success(request, f"Invitation of {name} revoked; the link no longer works.")
        elif "deactivate" in request.POST or "reactivate" in request.POST:
            active = "reactivate" in request.POST
            members.account_deactivate(
                user=membership.user, origin=Origin.of(request), active=active
            )
            messages.success(request, f"{name} {'reactivated' if active else 'deactivated'}.")
        else:
            form = RoleForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose a role: annotator or admin.")
                return redirect("workspace:members", project_id=project.pk)
            members.member_role_set(
                membership=membership, role=form.cleaned_data["role"], origin=Origin.of(request)
            )
            messages.success(request, f"{name} is now {form.cleaned_data['role']}.")
    except ServiceError as exc:
        messages.error(request, "; ".join(p.message for p in exc.problems))
    return redirect("workspace:members", project_id=project.pk)


class InvitationAcceptView(PasswordResetConfirmView):
    """An invited person sets their password through the one-time link (Django's reset token:
    spent by the new password). Recorded in the audit log."""

    template_name = "workspace/invitation.html"
    success_url = reverse_lazy("login")
    post_reset_login = False

    @method_decorator(never_cache)
    def dispatch(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        """A revoked invitation says so (410 Gone) before any form: nothing can be set."""
        if members.invitation_is_revoked(self.get_user(kwargs["uidb64"])):
            return TemplateResponse(self.request, self.template_name, {"revoked": True}, status=410)
        return super().dispatch(*args, **kwargs)

    def form_valid(self, form):  # noqa: ANN001, ANN201
        response = super().form_valid(form)
        members.invitation_accepted(user=form.user, origin=Origin.of(self.request))
        messages.success(self.request, f"Password set. Sign in as {form.user.get_username()}.")
        return response


invitation_accept = InvitationAcceptView.as_view()
