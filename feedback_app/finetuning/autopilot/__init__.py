"""The autopilot: the loop runs itself, one ordinary job a step.

A package cut by workflow: `steps` (the vocabulary, and each step's parameters as a table),
`settings` (what an admin sets, checked), `status` (what the page and the API show) and
`engine` (runs and their steps, under a lock). The names below are its public face.

When the open round has enough rankings (or a set share of its tasks done), a *run* starts and
goes through its steps, each an ordinary job (same page, cancel, retry):

    snapshot -> reward -> [kto_snapshot] -> policy -> evaluate -> gate -> [promote] -> generate

`policy` trains with the chosen stage (DPO, KTO, GRPO, RLOO) from the active policy (the
*parent*); `evaluate` compares it with the parent, judged by the reward model of this run; the
gate (`gate.py`, pure) decides from the win rate's interval, the KL and the reward model's
accuracy; `promote` runs only if it passed; `generate` makes the next round: head-to-head between
the new policy and its parent (the parent writing `head_to_head_share` of K) after a promotion,
from the active policy alone otherwise. The run is then done; the next one waits for the
trigger on that new round.

`autopilot_advance` moves a project's autopilot one step forward when it can. It is called when
a job finishes (`tasks.run_job`) and by the sweeper every few seconds (`manage.py sweep_jobs`),
so a job cancelled while queued or failed by the sweep moves it too. Every call locks the
project's Autopilot row (`select_for_update`; on SQLite, BEGIN IMMEDIATE serialises atomic
blocks), reads the run and its steps under that lock, and starts at most one next step; a
unique constraint on (run, step) and one on the open run of a project back it up, so two
workers advancing at once never start a step twice.

A step whose job fails or is cancelled, or that cannot start (its parameters are refused),
*stops* the run with the reason and pauses the autopilot: nothing is retried by itself, so a
broken step never loops. The admin retries the job (the ordinary retry) or fixes the settings,
then resumes; resuming follows the step's newest attempt (retrying it if it still failed).

A failed gate is a decision, not a failure: the run generates the next round from the active
policy and is done. But gates that keep failing would spend compute and annotators' time on
rounds whose policy is never promoted, so after `max_failed_gates` of them in a row (the run's
copy of the setting; 0: never) the autopilot pauses itself with the reason (`pause_reason`,
audited as `autopilot.pause`); the round the last run generated stays open for annotators. See
`_failed_gates` for what counts.
"""

from .engine import (
    autopilot_advance,
    autopilot_after_job,
    autopilot_tick,
    autopilot_update,
)
from .settings import SETTINGS, autopilot_get, check_settings, settings_dict
from .status import (
    AutopilotStatus,
    JobStep,
    RoundProgress,
    StepView,
    autopilot_status,
    job_step,
    round_progress,
    run_step_views,
)
from .steps import (
    EVALUATE,
    GATE,
    GENERATE,
    KTO_SNAPSHOT,
    POLICY,
    PROMOTE,
    REWARD,
    SNAPSHOT,
    STEP_LABELS,
    autopilot_stages,
    run_steps,
    step_kind,
)

__all__ = [
    "EVALUATE",
    "GATE",
    "GENERATE",
    "KTO_SNAPSHOT",
    "POLICY",
    "PROMOTE",
    "REWARD",
    "SETTINGS",
    "SNAPSHOT",
    "STEP_LABELS",
    "AutopilotStatus",
    "JobStep",
    "RoundProgress",
    "StepView",
    "autopilot_advance",
    "autopilot_after_job",
    "autopilot_get",
    "autopilot_stages",
    "autopilot_status",
    "autopilot_tick",
    "autopilot_update",
    "check_settings",
    "job_step",
    "round_progress",
    "run_step_views",
    "run_steps",
    "settings_dict",
    "step_kind",
]
