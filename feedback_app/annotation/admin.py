"""The Django admin for annotation rows.

A prompt's or candidate's stored HTML (`html`, `render_version`, `html_digest`) is not a field
here: those are ``editable=False`` on the models, so no admin form shows or accepts them, and a
change of the text renders them again in the model's save() (docs/architecture.md, "Safety of
untrusted text").
"""

from django import forms
from django.contrib import admin

from feedback_app.common.errors import Problem

from .importing import check_record
from .models import Assignment, Candidate, Prompt, Ranking, Task


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
