"""Projects and their members in the Django admin, through the same services as the pages and
the API: the admin's form checks with the services' checks, then its save calls them, so every
change here is audited like theirs (core/audit.py) and no rule is written a second time."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from feedback_app.common.errors import ServiceError
from feedback_app.core.audit import Origin
from feedback_app.core.models import MAX_GUIDELINES, Membership, Project

from . import members, projects


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


class ProjectAdminForm(forms.ModelForm):
    """The services' checks, their problems shown on the field."""

    def clean_candidates_per_task(self) -> int:
        """K is fixed once the project has tasks (the same rule as the API's)."""
        k = self.cleaned_data["candidates_per_task"]
        return _form_error(projects.check_candidates_per_task, self.instance, k)

    def clean_base_model(self) -> str:
        value = self.cleaned_data["base_model"]
        if value == self.instance.base_model:
            return value
        return _form_error(projects.check_base_model, value)

    def clean_generation(self) -> dict:
        return _form_error(projects.check_generation, self.cleaned_data["generation"] or {})


def _form_error(check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except ServiceError as exc:
        raise forms.ValidationError(exc.problems[0].message) from exc


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    # Guidelines are the one text field: the API's limit (Django's forms already refuse NUL).
    formfield_overrides = {models.TextField: {"max_length": MAX_GUIDELINES}}
    list_display = ["name", "candidates_per_task", "annotations_per_task", "rationale", "archived"]
    inlines = [MembershipInline]

    def save_model(
        self, request: HttpRequest, obj: Project, form: forms.ModelForm, change: bool
    ) -> None:
        """Create or update through the project services (which record the change). The
        form's checks already ran, so the services' own checks pass: nothing is half-written.
        The inline formsets hold `obj`, so the saved row's id is copied into it."""
        origin = Origin.of(request)
        fields = form.changed_data if change else list(form.cleaned_data)
        data = {name: form.cleaned_data[name] for name in fields if name in projects.SETTINGS}
        if not change:
            saved = projects.project_create(data=data, origin=origin, check=_checked_by_form)
        elif data:
            saved = projects.project_update(
                project=obj, data=data, origin=origin, check=_checked_by_form
            )
        else:
            saved = obj
        if "archived" in fields:
            saved = projects.project_archive(
                project=saved, archived=form.cleaned_data["archived"], origin=origin
            )
        obj.pk = saved.pk
        obj._state.adding = False

    def save_formset(
        self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool
    ) -> None:
        """Members added, re-roled or removed here go through the member services (audited)."""
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        origin = Origin.of(request)
        project = Project.objects.get(pk=form.instance.pk)
        # What the admin's history message reads (BaseModelFormSet.save sets these).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for sub in formset.forms:
            old = sub.instance if sub.instance.pk is not None else None
            if sub in formset.deleted_forms:
                if old is not None:
                    members.member_remove(membership=old, origin=origin)
                    formset.deleted_objects.append(old)
                continue
            if not sub.has_changed():
                continue
            user, role = sub.cleaned_data["user"], sub.cleaned_data["role"]
            if old is not None and "user" in sub.changed_data:
                members.member_remove(membership=Membership.objects.get(pk=old.pk), origin=origin)
                formset.deleted_objects.append(old)
                old = None
            if old is None:
                added = members.member_add(project=project, user=user, role=role, origin=origin)
                formset.new_objects.append(added)
            else:
                membership = Membership.objects.select_related("user", "project").get(pk=old.pk)
                members.member_role_set(membership=membership, role=role, origin=origin)
                formset.changed_objects.append((membership, sub.changed_data))


def _checked_by_form(ref: str) -> None:
    """The admin form checked the base model already (clean_base_model): no second load."""
    return None
