import random
import subprocess
import sys
from pathlib import Path

import pytest

from feedback_app.annotation.models import Ranking
from feedback_app.annotation.simulation import rank_by_score, rule_score, simulate

REPO = Path(__file__).resolve().parents[2]


def test_the_rule_prefers_positive_then_less_repetitive_text():
    assert rule_score("useful and valid") > rule_score("plain words") > rule_score("an error")
    assert rule_score("one two three") > rule_score("one one one")


def test_equal_scores_are_tied():
    assert rank_by_score([(1, "same"), (2, "same"), (3, "an error")]) == [[1, 2], [3]]


def test_a_tie_break_orders_equal_scores_by_the_text_not_its_length():
    cands = [(1, "plain words here"), (2, "plain"), (3, "an error")]
    groups = rank_by_score(cands, tie_break=True)
    assert groups[-1] == [3] and sorted(groups[:2]) == [[1], [2]]
    assert groups == rank_by_score(list(reversed(cands)), tie_break=True)  # stable, not by order


def test_noise_swaps_neighbouring_groups():
    cands = [(1, "useful valid"), (2, "plain"), (3, "an error")]
    assert rank_by_score(cands, rng=random.Random(0), noise=1.0) == [[2], [3], [1]]
    assert rank_by_score(cands, rng=random.Random(0), noise=0.0) == [[1], [2], [3]]


@pytest.mark.django_db
def test_bots_rank_every_open_task_through_the_services(make_project, make_user):
    bots = [make_user(f"bot-{i}") for i in range(3)]
    project = make_project(n_tasks=5, overlap=2, annotators=bots)
    result = simulate(project=project, annotators=bots)
    assert result.submitted == 10 == Ranking.objects.count()


def test_the_simulation_loads_without_torch():
    """The web process and `simulate_annotators` rank by the lexicon, not a model library."""
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'feedback_app.settings';"
        " django.setup(); import feedback_app.annotation.simulation;"
        " print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
