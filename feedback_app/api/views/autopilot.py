"""A project's autopilot (project admins): its settings and state, and the runs it made."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.core.audit import Origin
from feedback_app.finetuning import autopilot
from feedback_app.finetuning.models import Autopilot, AutopilotRun

from .. import permissions
from ..pagination import NewestFirstPagination


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    job = serializers.IntegerField(source="job.pk", allow_null=True, default=None)
    status = serializers.CharField(
        help_text="The job's status; passed or failed for the gate; pending; skipped."
    )


class AutopilotRunSerializer(serializers.ModelSerializer):
    steps = serializers.SerializerMethodField()
    gate = serializers.JSONField(
        help_text="passed, reason, reasons, inputs (win_rate, win_rate_low, kl, "
        "reward_accuracy and its parts on random and gold pairs), thresholds; empty until the "
        "gate decided."
    )
    config = serializers.JSONField(help_text="The autopilot's settings when the run started.")

    class Meta:
        model = AutopilotRun
        fields = [
            "id", "number", "round", "next_round", "state", "step", "stop_reason", "gate",
            "promoted", "parent", "policy", "reward", "config", "steps", "created_at",
            "finished_at",
        ]  # fmt: skip

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, run: AutopilotRun) -> list[dict]:
        return StepSerializer(autopilot.run_step_views(run), many=True).data


class RoundProgressSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    rankings = serializers.IntegerField()
    tasks = serializers.IntegerField()
    tasks_done = serializers.IntegerField()


SETTINGS_HELP = {
    "enabled": "Off by default.",
    "paused": "Nothing starts while paused (set by a failed step or max_failed_gates too); "
    "false resumes a stopped run (retrying its job).",
    "trigger": "rankings: rankings in the open round; share: share of its tasks done.",
    "trigger_rankings": "For trigger=rankings.",
    "trigger_share": "For trigger=share, in (0, 1].",
    "stage": "How the policy is trained.",
    "min_win_rate_low": "Gate: lower end of the win rate's 95 % Wilson interval, at least.",
    "max_kl": "Gate: KL to the parent (nats a sequence), at most.",
    "min_reward_accuracy": "Gate: the reward model's held-out accuracy, at least.",
    "max_kl_to_base": "Gate: KL to the base (the lineage's budget), at most.",
    "min_lc_win_rate": "Gate: the length-controlled win rate, at least.",
    "max_length_ratio": "Gate: policy/parent mean length within [1/r, r].",
    "head_to_head_share": "Share of K the parent writes in the next round after a promotion.",
    "human_margin": "Roll back when people prefer the parent; confirm when the human win "
    "rate's 95 % interval reaches 0.5 - margin.",
    "max_failed_gates": "Pause after this many runs in a row whose gate failed; 0: never.",
    "step_params": "Per step (snapshot, reward, policy, evaluate, generate): job parameters.",
}


class AutopilotSettingsSerializer(serializers.ModelSerializer):
    """The settings; a PUT may send any of them (the others keep their values)."""

    step_params = serializers.JSONField(help_text=SETTINGS_HELP["step_params"], required=False)

    class Meta:
        model = Autopilot
        fields = list(autopilot.SETTINGS)
        extra_kwargs = {
            name: {"help_text": text, "required": False}
            for name, text in SETTINGS_HELP.items()
            if name != "step_params"
        }

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # The stages as the stage table has them now (training/stages.py), not at import.
        fields["stage"].choices = [(s.name, s.choice_label) for s in autopilot.autopilot_stages()]
        return fields


class AutopilotSerializer(AutopilotSettingsSerializer):
    pause_reason = serializers.CharField(
        read_only=True,
        help_text="Why the autopilot paused itself (failed gates in a row, a stopped run); "
        "empty when an admin paused it or it is not paused. Resuming clears it.",
    )
    state = serializers.CharField(help_text="off, waiting, running, paused or stopped.")
    detail = serializers.CharField(
        help_text="The state in a sentence (a stop's or a pause's reason)."
    )
    open_round = RoundProgressSerializer(help_text="The open round, for the trigger.")
    run = AutopilotRunSerializer(allow_null=True, help_text="The open run, else the newest.")

    class Meta(AutopilotSettingsSerializer.Meta):
        fields = [
            *AutopilotSettingsSerializer.Meta.fields,
            "pause_reason", "state", "detail", "open_round", "run",
        ]  # fmt: skip


def _body(project) -> dict:
    status = autopilot.autopilot_status(project=project)
    data = {
        **autopilot.settings_dict(status.pilot),
        "pause_reason": status.pilot.pause_reason,
        "state": status.state,
        "detail": status.detail,
        "open_round": status.progress,
        "run": status.run,
    }
    return AutopilotSerializer(data).data


@extend_schema_view(
    get=extend_schema(operation_id="projects_autopilot_retrieve"),
    put=extend_schema(operation_id="projects_autopilot_update"),
)
class AutopilotApi(APIView):
    """The project's autopilot: settings, state, the current run's steps and gate (admins)."""

    @extend_schema(responses={200: AutopilotSerializer})
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        return Response(_body(project))

    @extend_schema(request=AutopilotSettingsSerializer, responses={200: AutopilotSerializer})
    def put(self, request: Request, project_id: int) -> Response:
        """Change any of the settings; 400s name the field (`step_params.policy.beta`)."""
        project = permissions.administered_project(request.user, project_id)
        autopilot.autopilot_update(project=project, data=request.data, origin=Origin.of(request))
        return Response(_body(project))


@extend_schema_view(get=extend_schema(operation_id="projects_autopilot_runs_list"))
class AutopilotRunsApi(generics.ListAPIView):
    """The autopilot's runs, newest first: the round each trained on and the one it made, each
    step's job, the gate's decision, and why a stopped one stopped."""

    serializer_class = AutopilotRunSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet[AutopilotRun]:
        project = permissions.administered_project(self.request.user, self.kwargs["project_id"])
        return AutopilotRun.objects.filter(project=project)
