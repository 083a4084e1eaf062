"""Build a dataset snapshot (pairs, SFT or KTO rows) through the one rows pipeline."""

from __future__ import annotations

from feedback_app.core.models import DatasetSnapshot, Job
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.services import snapshot_build
from feedback_app.preferences.stage_rows import StagePolicy

from ..params import STAGE_FLAGS
from ..reporting import JobReporter


def run_build_dataset(job: Job, reporter: JobReporter) -> dict:
    p = dict(job.params)
    test_fraction, seed = p.pop("test_fraction"), p.pop("seed")
    kind = p.pop("kind", DatasetSnapshot.Kind.PAIRS)
    half_life = p.pop("recency_half_life", None)
    stage = StagePolicy(**{k: p.pop(k) for k in STAGE_FLAGS if k in p})
    reporter.stage(f"Building {DatasetSnapshot.Kind(kind).label}", 0.1)
    snap = snapshot_build(
        project=job.project,
        policy=PairPolicy(**p),
        test_fraction=test_fraction,
        seed=seed,
        job=job,
        note=reporter.log,
        kind=kind,
        stage=stage,
        hold_out_eval_set=True,  # training never sees the fixed evaluation set
        recency_half_life=half_life,
    )
    return {"snapshot": snap.pk, "content_hash": snap.content_hash, **snap.counts}
