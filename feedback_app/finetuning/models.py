"""Rounds of the loop and the autopilot's records (model versions and jobs are core rows)."""

from __future__ import annotations

from django.db import models

from feedback_app.common.models import TimeStampedModel
from feedback_app.core.models import Job, ModelVersion, Project
from training.stages import stage_list


class Round(TimeStampedModel):
    """A round of candidates: which policy versions generated it (two for a head-to-head)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    model_versions = models.ManyToManyField(ModelVersion, related_name="rounds", blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # How the round's prompts were chosen and from what (training/selection.py): the rule, the
    # reward model, the pool, the chosen prompt ids and a summary of the scores.
    selection = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_number_unique")
        ]

    def __str__(self) -> str:
        return f"round {self.number}"


# --- the autopilot (finetuning/autopilot/ drives it; docs/architecture.md, "Autopilot") -------


class Autopilot(TimeStampedModel):
    """A project's autopilot settings: off by default; one row a project, made on first save.

    The gate's thresholds and the step parameters are copied onto each run when it starts, so a
    run is judged by the settings it started with, and the record says which.
    """

    class Trigger(models.TextChoices):
        RANKINGS = "rankings", "Rankings in the open round"
        SHARE = "share", "Share of the open round's tasks done"

    # The stages the autopilot may train the policy with (the stage table's `autopilot` rows).
    Stage = models.TextChoices(
        "Stage",
        [(s.name.upper(), (s.name, s.choice_label)) for s in stage_list() if s.autopilot],
    )

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="autopilot")
    enabled = models.BooleanField(default=False)
    # Set by the admin, by a failed step (the run's stop_reason says why) or by
    # `max_failed_gates` failed gates in a row; nothing starts or advances while paused.
    # Resuming clears it, and `pause_reason` with it.
    paused = models.BooleanField(default=False)
    # Why the autopilot paused itself (a stopped run, failed gates); blank when an admin paused.
    pause_reason = models.TextField(blank=True)
    # When it was last resumed: the failed-gate streak counts only runs finished after it.
    resumed_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger, default=Trigger.SHARE)
    trigger_rankings = models.PositiveIntegerField(default=100)
    trigger_share = models.FloatField(default=1.0)
    stage = models.CharField(max_length=16, choices=Stage, default=Stage.DPO)
    # The gate asks that the new policy is not clearly worse than its parent by a judge it was
    # not optimised against, and that the judge is no worse than a coin; the people's
    # head-to-head round after a promotion has the last word (`human_margin`). 0.35: at the 64
    # comparisons of the evaluate step an even verdict (0.5, lower bound 0.38) passes, where
    # 0.5 needed 0.62, which a reward model of 0.6-0.7 accuracy does not give even a clearly
    # better policy (docs/benchmarks.md, "Rounds": policies at 0.40 against a parent's 0.34
    # judged exactly even). 0.5 for the judge: the first rounds' yardstick holds 60-120 pairs
    # (standard error 0.05-0.06), and read 0.50 and 0.55 for judges at 0.60 and 0.61 on 455.
    min_win_rate_low = models.FloatField(default=0.35)
    # KL in nats a sequence grows with the length sampled. On the default model one run of
    # DPO at its defaults moved the policy 3-8 nats from its parent at the evaluate step's 48
    # tokens, and three promotions 25 from the base (docs/benchmarks.md, "Rounds"), where a
    # budget of 5 a run and 20 a lineage stops the loop by its fourth round. 20 a run and 60 a
    # lineage (about 1 nat a token) leave room for five rounds and still stop a run-away step;
    # whether a move was good is the people's verdict to give.
    max_kl = models.FloatField(default=20.0)
    min_reward_accuracy = models.FloatField(default=0.5)
    # The lineage's KL budget, and a win must not be only length (finetuning/gate.py).
    max_kl_to_base = models.FloatField(default=60.0)
    min_lc_win_rate = models.FloatField(default=0.45)  # even, as the win rate above
    max_length_ratio = models.FloatField(default=2.0)
    head_to_head_share = models.FloatField(default=0.5)
    # The people's head-to-head round after a promotion (finetuning/human.py): rolled back when
    # they prefer the parent, confirmed when the human win rate's 95 % interval reaches above
    # 0.5 - human_margin.
    human_margin = models.FloatField(default=0.1)
    # Pause after this many runs in a row whose gate failed (no policy promoted); 0: never.
    max_failed_gates = models.PositiveIntegerField(default=3)
    # Per step, the job parameters to use instead of the kinds' defaults (checked when saved):
    # {"snapshot": {...}, "reward": {...}, "policy": {...}, "evaluate": {...}, "generate": {...}}
    step_params = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"autopilot of {self.project}"


class AutopilotRun(TimeStampedModel):
    """One turn of the loop the autopilot ran: from the open round that triggered it to the
    round it generated, with each step's job, the gate's decision and, if it stopped, why.

    Other code reads these rows (the rounds report): `round` is the round whose rankings it
    trained on, `next_round` the one it generated, `promoted` whether its policy became active.
    """

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"  # a step failed or could not start: see stop_reason
        DONE = "done", "Done"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="autopilot_runs")
    number = models.PositiveIntegerField()
    round = models.PositiveIntegerField(help_text="The open round whose rankings triggered it.")
    next_round = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State, default=State.RUNNING)
    step = models.CharField(max_length=16, blank=True, help_text="The newest step started.")
    stop_reason = models.TextField(blank=True)
    # The settings it runs with (Autopilot's fields, copied at its start).
    config = models.JSONField(default=dict)
    # The gate's decision: inputs, thresholds, passed, reasons (finetuning/gate.py).
    gate = models.JSONField(default=dict, blank=True)
    promoted = models.BooleanField(default=False)
    # The people's verdict on its promotion, read from the head-to-head round it generated
    # (finetuning/human.py): win rate, interval, rankings, "confirmed" / "rolled back" / ...
    human = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    policy = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reward = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="autopilot_run_number"),
            # At most one unfinished run a project: two sweeps cannot start two.
            models.UniqueConstraint(
                fields=["project"],
                condition=models.Q(state__in=["running", "stopped"]),
                name="one_open_autopilot_run",
            ),
        ]

    def __str__(self) -> str:
        return f"autopilot run {self.number} ({self.state})"


class AutopilotStep(TimeStampedModel):
    """A step of a run and its job (the newest attempt, when the admin retried it): made once."""

    run = models.ForeignKey(AutopilotRun, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=16)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["id"]
        constraints = [
            # The guarantee that two workers advancing at once never start one step twice.
            models.UniqueConstraint(fields=["run", "name"], name="autopilot_step_once"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.run}"
