"""The Django admin for annotation rows.

A prompt's or candidate's stored HTML (`html`, `render_version`, `html_digest`) is not a field
here: those are ``editable=False`` on the models, so no admin form shows or accepts them, and a
change of the text renders them again in the model's save() (docs/architecture.md, "Safety of
untrusted text").
"""

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from feedback_app.common.errors import Problem, ServiceError
from feedback_app.core.audit import about_project, changes, project_values, record
from feedback_app.core.models import MAX_GUIDELINES, Membership, Project

from .importing import check_record
from .models import Assignment, Candidate, Prompt, Ranking, Task
from .projects import check_base_model, check_candidates_per_task, check_generation


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


class ProjectAdminForm(forms.ModelForm):
    def clean_candidates_per_task(self) -> int:
        """K is fixed once the project has tasks (the same rule as the API's)."""
        k = self.cleaned_data["candidates_per_task"]
        try:
            return check_candidates_per_task(self.instance, k)
        except ServiceError as exc:
            raise forms.ValidationError(exc.problems[0].message) from exc

    def clean_base_model(self) -> str:
        value = self.cleaned_data["base_model"]
        if value == self.instance.base_model:
            return value
        try:
            return check_base_model(value)
        except ServiceError as exc:
            raise forms.ValidationError(exc.problems[0].message) from exc

    def clean_generation(self) -> dict:
        try:
            return check_generation(self.cleaned_data["generation"] or {})
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
        """Settings changed here are recorded like the API's and the pages' (core.audit)."""
        before = project_values(Project.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        if before is None:
            record("project.create", request=request, **about_project(obj))
        elif changed := changes(before, project_values(obj)):
            record("project.update", request=request, **about_project(obj, changed=changed))


class PromptAdminForm(forms.ModelForm):
    # The admin builds the Meta (model, fields) from PromptAdmin.
    def clean_messages(self) -> list | None:
        """A chat as the import accepts it: the page renders each message's content."""
        messages = self.cleaned_data.get("messages")
        if messages is not None:
            problems: list[Problem] = []
            check_record({"prompt": messages}, 1, None, problems)
            if problems:
                raise forms.ValidationError([f"{p.field}: {p.message}" for p in problems])
        return messages


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    form = PromptAdminForm
    list_display = ["id", "project", "__str__", "external_id", "created_at"]
    list_filter = ["project"]
    search_fields = ["text", "external_id"]


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "round", "submitted_count", "target_annotations"]
    list_filter = ["project", "round"]
    list_select_related = ["project"]
    inlines = [CandidateInline]
    raw_id_fields = ["prompt"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["task", "annotator", "status", "leased_at", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["task"]


@admin.register(Ranking)
class RankingAdmin(admin.ModelAdmin):
    list_display = [
        "task",
        "annotator",
        "groups",
        "all_bad",
        "unsafe",
        "time_spent_ms",
        "created_at",
    ]
    list_filter = ["task__project", "all_bad", "unsafe"]
    raw_id_fields = ["task", "assignment"]
