"""The rows everything else points at: projects and their members, model versions, jobs, and
dataset snapshots.

They live at the bottom so that foreign keys only point down (DESIGN.md, docs/architecture.md):
a candidate names the model version that wrote it, a snapshot and a model version the job that
made them, a model version the snapshot it learnt from. Each keeps the table it had in the app it
came from (`db_table`): moving them here changed no row (migrations core 0001 and the "moved to
core" migrations of annotation, finetuning and preferences change Django's state only).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from feedback_app.common.models import TimeStampedModel
from training import stages as training_stages

# Guidelines are part of every ranking page (annotate.html embeds them, besides their own
# page), so each load pays for their size: 1 MB of guidelines made every ranking page 2.1 MB.
# 20 000 characters is some ten printed pages, more than annotators read between tasks
# (the demo's are under 1 000), and renders to about 25 kB of HTML.
MAX_GUIDELINES = 20_000
# How long a handed-out task stays reserved for its annotator (a project's `lease_seconds`).
LEASE_SECONDS_MIN, LEASE_SECONDS_MAX = 60, 7 * 24 * 3600


def default_lease_seconds() -> int:
    """New projects start from the deployment's ANNOTATION_LEASE_SECONDS."""
    return settings.ANNOTATION_LEASE_SECONDS


class Project(TimeStampedModel):
    class Rationale(models.TextChoices):
        OPTIONAL = "optional", "Optional"
        REQUIRED = "required", "Required"

    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    candidates_per_task = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(2), MaxValueValidator(8)]
    )
    annotations_per_task = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    rationale = models.CharField(max_length=16, choices=Rationale, default=Rationale.OPTIONAL)
    demonstrations = models.BooleanField(
        default=False,
        help_text="Annotators may write an ideal answer or edit the best candidate (SFT data).",
    )
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of hand-outs that give a gold task the annotator has not seen (0..1).",
    )
    lease_seconds = models.PositiveIntegerField(
        default=default_lease_seconds,
        validators=[MinValueValidator(LEASE_SECONDS_MIN), MaxValueValidator(LEASE_SECONDS_MAX)],
        help_text="How long a handed-out task stays reserved for its annotator.",
    )
    base_model = models.CharField(
        max_length=500,
        blank=True,
        help_text="Hub id or local path of the causal LM the loop starts from.",
    )
    generation = models.JSONField(
        default=dict,
        blank=True,
        help_text="Sampling defaults of generate jobs; a job's own parameters win.",
    )
    archived = models.BooleanField(
        default=False,
        help_text="Hidden from annotators and read-only until restored; never deleted.",
    )
    # Adaptive overlap: a task whose votes' top choices differ asks for one more ranking at a
    # time up to this many (annotation/submit.py); 0 or <= annotations_per_task: fixed overlap.
    annotations_max = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(50)],
        help_text="Adaptive overlap: most rankings a task while top choices differ.",
    )
    # Active selection: a generate job with a round size picks the prompts where the active
    # reward model is least certain between the policy's candidates (finetuning/rounds.py).
    active_selection = models.BooleanField(
        default=False,
        help_text="Choose each round's prompts where the reward model is least certain.",
    )
    # AI judges (issue 23): a judge's votes count (datasets, triage) only while the lower end
    # of its agreement interval with people reaches this (preferences/quality/calibration.py).
    judge_min_agreement = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Least agreement with people (95 % lower bound) for a judge's votes to count.",
    )
    # Triage: people are handed first the tasks a judge ranked unsure (position-inconsistent,
    # low margin) or against another judge (annotation/handout.py, Task.judge_unsure). Every
    # judge's doubt orders the queue, trusted or not: it only changes what people see first,
    # never whose votes count.
    judge_triage = models.BooleanField(
        default=False,
        help_text="Hand people first the tasks an AI judge is unsure of or judges disagree on.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        db_table = "annotation_project"  # its table before the move to core: no row moved
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(candidates_per_task__gte=2, candidates_per_task__lte=8),
                name="project_k_between_2_and_8",
            ),
            models.CheckConstraint(
                condition=Q(annotations_per_task__gte=1), name="project_overlap_positive"
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0.0, gold_rate__lte=1.0),
                name="project_gold_rate_between_0_and_1",
            ),
            models.CheckConstraint(
                condition=Q(
                    lease_seconds__gte=LEASE_SECONDS_MIN, lease_seconds__lte=LEASE_SECONDS_MAX
                ),
                name="project_lease_seconds_bounded",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role, default=Role.ANNOTATOR)

    class Meta:
        db_table = "annotation_membership"  # its table before the move to core: no row moved
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_once_per_project")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class Judge(TimeStampedModel):
    """An AI member of a project: a service user (never able to sign in) ranking through the
    same hand-out and submit as people, and how to build it.

    An endpoint's API key is either read by the worker from the environment variable
    `api_key_env` names, or stored sealed (`api_key_sealed`, common/sealed.py) and opened only
    in the worker that runs the judge. Either way no page, log, export or archive holds it.
    """

    class Kind(models.TextChoices):
        CAUSAL_LM = "causal_lm", "Local causal LM"
        REWARD_MODEL = "reward_model", "Reward model version"
        OPENAI = "openai", "OpenAI-compatible endpoint"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judges")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judge"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    weights = models.CharField(
        max_length=500, blank=True, help_text="Causal LM: a local path or hub id."
    )
    model_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="judges"
    )
    base_url = models.CharField(max_length=500, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the key."
    )
    # Fernet token of the key (common/sealed.py); never read but by the judge's worker.
    api_key_sealed = models.TextField(blank=True, default="", editable=False)
    template = models.TextField(blank=True, help_text="Empty: the default judge template.")
    mode = models.CharField(max_length=16, default="logprobs", blank=True)
    tie_threshold = models.FloatField(default=0.0)
    # Triage (annotation/judge_votes.py): a pair whose |margin| falls under this, in the
    # judge's own units, makes its task one people see first; ties and pairs that flipped with
    # the order always do. 0: only those.
    unsure_margin = models.FloatField(
        default=0.0, help_text="Triage: a pair with a smaller |margin| is unsure (judge units)."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.user.get_username()


class ModelVersion(TimeStampedModel):
    """A policy or a reward model; `weights` is a local path or a Hugging Face hub id."""

    class Kind(models.TextChoices):
        POLICY = "policy", "Policy"
        REWARD = "reward", "Reward model"

    # What made a version (the lineage shows it beside the parent): the base, or a training
    # stage of the stage table (training/stages.py).
    Stage = models.TextChoices(
        "Stage",
        [("BASE", ("base", "Base"))]
        + [(s.name.upper(), (s.name, s.label)) for s in training_stages.stage_list()],
    )

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=16, choices=Kind)
    stage = models.CharField(max_length=16, choices=Stage, blank=True, default="")
    name = models.CharField(max_length=200)
    weights = models.CharField(max_length=500)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    snapshot = models.ForeignKey(
        "DatasetSnapshot",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
    )
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        db_table = "finetuning_modelversion"  # its table before the move to core: no row moved
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind"],
                condition=Q(is_active=True),
                name="one_active_version_per_kind",
            ),
            models.UniqueConstraint(fields=["project", "name"], name="version_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        """The one display name of a version, in pages and the API: "policy-12 · DPO"."""
        stage = self.get_stage_display() if self.stage else ""
        return (
            f"{self.name} · {stage}" if stage and stage.lower() != self.name.lower() else self.name
        )

    @property
    def won_against_parent(self) -> bool | None:
        """From the last evaluation: did it beat its parent (win rate above one half)?"""
        rate = self.metrics.get("win_rate")
        return None if rate is None else rate > 0.5


class Job(TimeStampedModel):
    """One unit of background work. This row, not Celery's result backend, is the truth."""

    # The job kinds (finetuning/kinds.py declares each; test_kinds checks they agree): one
    # `train_<stage>` a row of the stage table (training/stages.py) between the others.
    Kind = models.TextChoices(
        "Kind",
        [
            ("GENERATE", ("generate", "Generate a round")),
            ("BUILD_DATASET", ("build_dataset", "Build a dataset snapshot")),
            *[(s.kind.upper(), (s.kind, s.title)) for s in training_stages.stage_list()],
            ("EVALUATE", ("evaluate", "Evaluate a policy")),
            ("PROMOTE", ("promote", "Promote a model version")),
            ("REVIEW_SCORES", ("review_scores", "Score the review queue")),
            ("BUILD_BASE", ("build_base", "Build the offline base model")),
            ("IMPORT_ARCHIVE", ("import_archive", "Import a project archive")),
            ("JUDGE_ROUND", ("judge_round", "Judge a round")),
        ],
    )

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    progress_note = models.CharField(max_length=200, blank=True)
    metric_history = models.JSONField(default=list, blank=True)
    log_tail = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    # Where its message went and when it was last sent (the sweep re-sends a message no worker
    # took), and which queues the worker that claimed it consumes (",default,training,"): the
    # heartbeats of a worker's jobs show for which queues a worker was alive when.
    queue = models.CharField(max_length=100, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveSmallIntegerField(default=0)
    worker_queues = models.CharField(max_length=500, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Meta:
        db_table = "finetuning_job"  # its table before the move to core: no row moved
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status not in self.ACTIVE

    @property
    def retryable(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELLED)


class DatasetSnapshot(TimeStampedModel):
    """Rows in TRL's format (pairs, SFT or KTO), split by prompt, written once; the row
    describes the files.

    `rankings_through` is the highest Ranking id the snapshot saw, so "rankings since the last
    snapshot" is a cheap count.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")

    class Kind(models.TextChoices):
        PAIRS = "pairs", "Preference pairs"
        SFT = "sft", "SFT rows"
        KTO = "kto", "KTO rows"

    content_hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind, default=Kind.PAIRS)
    policy = models.JSONField(help_text="The PairPolicy that chose the pairs.")
    test_fraction = models.FloatField()
    seed = models.IntegerField()
    path = models.CharField(max_length=500, help_text="Folder holding train.jsonl and test.jsonl.")
    format = models.CharField(max_length=20, help_text="standard or conversational")
    counts = models.JSONField(default=dict)
    rankings_through = models.BigIntegerField(default=0)
    job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "preferences_datasetsnapshot"  # its table before the move to core: no row moved
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "content_hash"], name="snapshot_unique_content"
            )
        ]

    def __str__(self) -> str:
        return f"snapshot {self.content_hash[:10]} ({self.counts.get('train', 0)} train pairs)"


class AuditEventQuerySet(models.QuerySet):
    """Append-only: rows are written by `core.audit.record` and never changed or deleted."""

    def update(self, **kwargs):  # noqa: ANN003, ANN201 - QuerySet's own signature
        raise PermissionError("the audit log is append-only")

    def delete(self):  # noqa: ANN201
        raise PermissionError("the audit log is append-only")


class AuditEvent(models.Model):
    """What an admin or a script did, who did it, when, and from where (issue 13).

    `actor_name` keeps the name even if the account is later removed; `via` says which
    interface (page, api, cli, system). Projects are archived, not deleted, so a project's events
    stay with it.
    """

    class Via(models.TextChoices):
        PAGE = "page", "Page"
        API = "api", "API"
        CLI = "cli", "Command line"
        SYSTEM = "system", "System"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=8, choices=Via, default=Via.SYSTEM)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action}"

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if self.pk is not None:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        raise PermissionError("the audit log is append-only")
