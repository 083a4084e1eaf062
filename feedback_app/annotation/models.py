"""Projects, prompts, candidates, tasks, leases and rankings.

Rankings store what the annotator did (ordered groups of candidate ids, the order shown);
everything else (pairs, agreement, exports) is derived from them elsewhere.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.safestring import SafeString

from feedback_app.common.models import TimeStampedModel
from feedback_app.common.rendering import (
    DIGEST_LENGTH,
    RENDER_VERSION,
    is_certified,
    render_stored,
    stored_or_rendered,
)
from feedback_app.core.models import Project

# Never edited by hand (editable=False keeps them out of the admin, every ModelForm and DRF's
# ModelSerializers): only `render()` writes them, from the text.
HTML_FIELDS = ("html", "render_version", "html_digest")


class StoredHtml(models.Model):
    """What certifies a stored rendering (common/rendering.py), shared by prompts, candidates
    and demonstrations; each adds its own `html` (one string, or one per chat message)."""

    render_version = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="0: not rendered."
    )
    html_digest = models.CharField(
        max_length=DIGEST_LENGTH,
        blank=True,
        editable=False,
        help_text="Certifies that html was rendered from this text (common/rendering.py).",
    )

    class Meta:
        abstract = True


class Prompt(TimeStampedModel, StoredHtml):
    """A prompt: plain text, or a chat (a list of {role, content} messages)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField(blank=True, help_text="The prompt when it is plain text.")
    messages = models.JSONField(null=True, blank=True, help_text="The prompt when it is a chat.")
    content_hash = models.CharField(max_length=64)
    external_id = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    html = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Sanitised HTML of the text, or of each message.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "content_hash"], name="prompt_unique_content_per_project"
            )
        ]

    def __str__(self) -> str:
        if self.is_chat:
            return (self.messages[-1]["content"] if self.messages else "")[:60]
        return self.text[:60]

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, rendering the HTML again first if the text or a message changed since."""
        _render_if_stale(self, kwargs, text_fields={"text", "messages"})
        super().save(*args, **kwargs)

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def texts(self) -> list[str]:
        """The text, or the content of each message: what `html` holds the rendering of."""
        return [m["content"] for m in self.messages] if self.is_chat else [self.text]

    def render(self) -> None:
        """Store the sanitised HTML of the text or of each message (before saving)."""
        self.html, self.html_digest = render_stored(self.texts())
        self.render_version = RENDER_VERSION

    def html_is_current(self) -> bool:
        html = self.html if isinstance(self.html, list) else []
        return is_certified(self.texts(), html, self.render_version, self.html_digest)

    def shown(self) -> list[tuple[str, SafeString]]:
        """(role, HTML) of each message, or ("", HTML) of the text: what the page shows."""
        roles = [m["role"] for m in self.messages] if self.is_chat else [""]
        html = self.html if isinstance(self.html, list) else []
        shown = stored_or_rendered(self.texts(), html, self.render_version, self.html_digest)
        return list(zip(roles, shown, strict=True))


class Task(TimeStampedModel):
    """One prompt with its K candidates, as handed to annotators."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    round = models.PositiveIntegerField(default=1)
    target_annotations = models.PositiveSmallIntegerField()
    # Kept by ranking_submit under the task's row lock: lets the hand-out skip full tasks with
    # an index instead of counting every task's rankings on each request.
    submitted_count = models.PositiveSmallIntegerField(default=0)
    # A gold task's expected order: groups of candidate ids, best first (ties allowed), checked
    # by rankings.check_ranking. Gold tasks are mixed into every annotator's queue at the
    # project's gold_rate (annotation/handout.py) and take no slot: a gold task is kept filled
    # (target_annotations == submitted_count, which its rankings do not raise), so the
    # ordinary walk, its index and the unfilled count never see it. Their rankings never count
    # as votes (preferences/rows.py).
    gold = models.JSONField(null=True, blank=True, editable=False)
    # Adaptive overlap (annotation/submit.py): the first ranking's top group ("3,7": candidate
    # ids) and whether a later ranking's top group differed from it. Kept by the submit's one
    # UPDATE, so the hand-out reads only target_annotations, as before.
    first_top = models.CharField(max_length=200, blank=True, default="", editable=False)
    top_split = models.BooleanField(default=False, editable=False)
    # Triage (issue 23): how much an AI judge's ranking of this task wants people first. 0: no
    # judge ranked it, or every judge was sure; 1..100: the per cent of its pairs a judge
    # flipped with the order, tied, or decided under its `unsure_margin`; 1000 + per cent: two
    # judges chose opposite sides of pairs (judge_votes.triage_priority). Written by the submit
    # (annotation/judge_votes.py) under the task's row lock; with the project's `judge_triage`
    # the hand-out walks unfilled tasks by it, highest first, then by id.
    judge_unsure = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "round"], name="task_once_per_prompt_round"),
            models.CheckConstraint(
                condition=Q(submitted_count__lte=F("target_annotations")),
                name="task_never_over_target",
            ),
        ]
        indexes = [
            # Only the tasks still wanting rankings, in hand-out order: the hand-out walks it
            # from the oldest and never reads the filled ones (with an index on all tasks it
            # filtered them out one by one: 0.25 ms per 300 filled, growing with the project).
            models.Index(
                fields=["project", "id"],
                condition=Q(submitted_count__lt=F("target_annotations")),
                name="task_unfilled_by_project",
            ),
            # The same tasks in triage order (judge_unsure first, then id), for projects with
            # `judge_triage`: the hand-out walks it as it walks the one above, with no sort.
            models.Index(
                fields=["project", "-judge_unsure", "id"],
                condition=Q(submitted_count__lt=F("target_annotations")),
                name="task_triage_by_project",
            ),
            # The few gold tasks, for the hand-out's gold pick.
            models.Index(
                fields=["project", "id"],
                condition=Q(gold__isnull=False),
                name="task_gold_by_project",
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} (round {self.round})"


class RenderedText(TimeStampedModel, StoredHtml):
    """Untrusted text stored with its sanitised HTML from the one renderer, certified by a keyed
    digest (common/rendering.py): what candidates and demonstrations share."""

    text = models.TextField()
    html = models.TextField(blank=True, editable=False, help_text="Sanitised HTML of the text.")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.text[:60]

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, rendering the HTML again first if the text changed since."""
        _render_if_stale(self, kwargs, text_fields={"text"})
        super().save(*args, **kwargs)

    def render(self) -> None:
        """Store the sanitised HTML of the text (before saving)."""
        (self.html,), self.html_digest = render_stored([self.text])
        self.render_version = RENDER_VERSION

    def html_is_current(self) -> bool:
        return is_certified([self.text], [self.html], self.render_version, self.html_digest)

    def shown(self) -> SafeString:
        (shown,) = stored_or_rendered(
            [self.text], [self.html], self.render_version, self.html_digest
        )
        return shown


class Candidate(RenderedText):
    """A completion shown in a task; `source` names the model or external origin that made it."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="candidates")
    source = models.CharField(max_length=200, blank=True)
    model_version = models.ForeignKey(
        "core.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="candidates",
    )
    position = models.PositiveSmallIntegerField(help_text="Order in the imported file.")

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="candidate_position_unique")
        ]


class Demonstration(RenderedText):
    """An answer an annotator wrote for a task, or the best candidate edited into a better one.

    Untrusted text like a candidate: stored with its sanitised HTML from the one renderer.
    One a task and annotator (writing again replaces it). SFT data; an edit is also a pair.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="demonstrations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demonstrations"
    )
    edited_from = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="edits"
    )

    class Meta:
        ordering = ["task", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "annotator"], name="demonstration_once_per_annotator"
            )
        ]


def _render_if_stale(
    row: Prompt | RenderedText, kwargs: dict[str, Any], text_fields: set[str]
) -> None:
    """Render `row` before its save() if its HTML is not certified for its text.

    Logic in save() on purpose (STYLE.md prefers services): the HTML is a cache of the text, not
    a business rule, and save() is the one path every single-row ORM write takes: the admin's
    change form and its candidate inline, a shell, any later service. Writes that skip save()
    (``QuerySet.update()``, raw SQL, a migration) are caught on read instead, by the digest
    (common/rendering.py); this only spares the pages rendering such rows on every view.
    """
    fields = kwargs.get("update_fields")
    if fields is not None and not text_fields & set(fields):
        return
    if text_fields & row.get_deferred_fields():
        return  # not loaded, so not changed
    if not row.html_is_current():
        row.render()
        if fields is not None:
            kwargs["update_fields"] = {*fields, *HTML_FIELDS}


class Assignment(TimeStampedModel):
    """An annotator's claim on a task: a lease until `expires_at`, then submitted or skipped.

    A lease past `expires_at` is expired (derived, not stored): it no longer holds a slot, and
    the row is reused if the same annotator is handed the task again.
    """

    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    display_order = models.JSONField(help_text="Candidate ids in the order shown.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="assignment_once_per_task")
        ]
        indexes = [
            models.Index(fields=["annotator", "status"]),
            models.Index(fields=["task", "status", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on {self.task_id}: {self.status}"


class Ranking(TimeStampedModel):
    """An annotator's order of a task's candidates: groups of ids, best first; a group is a tie."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="rankings")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rankings"
    )
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="ranking")
    groups = models.JSONField()
    display_order = models.JSONField()
    rationale = models.TextField(blank=True)
    all_bad = models.BooleanField(default=False)
    unsafe = models.BooleanField(default=False)
    time_spent_ms = models.PositiveIntegerField()
    payload_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="ranking_once_per_task")
        ]

    @property
    def flags(self) -> list[str]:
        return [name for name in ("all_bad", "unsafe") if getattr(self, name)]

    def __str__(self) -> str:
        return f"{self.annotator} ranked task {self.task_id}"


class JudgeVote(models.Model):
    """What an AI judge's ranking rests on (issue 23): each pair's verdict in both orders.

    comparisons: [{"a": id, "b": id, "a_first": v, "b_first": v, "margin": m}] with candidate
    ids a < b and verdicts +1 (a better), 0, -1 in each order; the ranking itself is the
    Copeland grouping of them. `confidence` is the smallest |margin| (0 when a pair flipped
    with the order): triage hands people the least sure first.
    """

    ranking = models.OneToOneField(Ranking, on_delete=models.CASCADE, related_name="judge_vote")
    comparisons = models.JSONField(default=list)
    inconsistent = models.PositiveSmallIntegerField(default=0)
    confidence = models.FloatField(default=0.0)
    tokens = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"judge vote on ranking {self.ranking_id}"
