"""Agreement figures: hand-made cases with known answers, and the reference implementations."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest
from scipy.stats import kendalltau

from feedback_app.preferences.pairs import RankingRow
from feedback_app.preferences.pairs import pairwise_agreement as app_pairwise_agreement
from feedback_app.preferences.quality.agreement import (
    kendall_tau,
    krippendorff_alpha,
    pairwise_agreement,
    pairwise_counts,
    tau_b,
    tau_counts,
)
from feedback_app.preferences.quality.judgements import Judgement, ranks_from_groups


def J(task: int, annotator: int, groups: list[list[int]]) -> Judgement:
    return Judgement(task, annotator, ranks_from_groups(groups))


SAME = [J(t, a, [[1 + 10 * t], [2 + 10 * t], [3 + 10 * t]]) for t in (1, 2) for a in (7, 8, 9)]
REVERSED = [J(1, 7, [[1], [2], [3]]), J(1, 8, [[3], [2], [1]])]
TIED = [J(1, 7, [[1, 2], [3]]), J(1, 8, [[1], [2], [3]])]


def test_identical_rankings_agree_perfectly_on_every_figure():
    pairwise, tau, alpha = pairwise_agreement(SAME), kendall_tau(SAME), krippendorff_alpha(SAME)
    assert pairwise.value == 1.0 and tau.value == 1.0 and alpha.value == pytest.approx(1.0)
    assert (pairwise.tasks, pairwise.judgements, pairwise.compared) == (2, 6, 2 * 3 * 3)
    assert (tau.tasks, tau.judgements, tau.comparisons) == (2, 6, 6)
    assert (alpha.tasks, alpha.judgements, alpha.units) == (2, 6, 6)


def test_reversed_rankings_disagree_perfectly():
    assert pairwise_agreement(REVERSED).value == 0.0
    assert kendall_tau(REVERSED).value == -1.0
    # Two coders, ranks 1,2,3 against 3,2,1 over 3 units; by hand from the coincidence matrix:
    # o = [[0,0,2],[0,2,0],[2,0,0]], n_c = (2,2,2), d2_13 = (6 - 2)^2 = 16, d2_12 = d2_23 = 4,
    # alpha = 1 - (6 - 1) * (2 * 2 * 16) / (2 * (4*4 + 4*16 + 4*4)) = 1 - 320 / 192 = -2/3.
    assert krippendorff_alpha(REVERSED).value == pytest.approx(-2 / 3)


def test_a_tie_is_a_verdict_of_its_own():
    # (1,2): tie against "1 better" disagrees; (1,3) and (2,3) agree.
    assert pairwise_agreement(TIED).value == pytest.approx(2 / 3)
    # P = 2, Q = 0, one pair tied in x only: 2 / sqrt(3 * 2).
    assert kendall_tau(TIED).value == pytest.approx(2 / 6**0.5)


def test_tau_is_undefined_for_an_annotator_who_tied_everything_and_counted_apart():
    result = kendall_tau([J(1, 7, [[1, 2, 3]]), J(1, 8, [[1], [2], [3]]), J(1, 9, [[1], [2], [3]])])
    assert (result.value, result.comparisons, result.undefined) == (1.0, 1, 2)


def test_figures_rest_only_on_tasks_with_two_judgements():
    lone = [J(5, 7, [[50], [51]])]
    assert pairwise_agreement(lone).value is None and pairwise_agreement(lone).tasks == 0
    assert kendall_tau(lone).value is None and krippendorff_alpha(lone).value is None
    counted = pairwise_agreement(SAME + lone)
    assert (counted.tasks, counted.judgements) == (2, 6)
    assert krippendorff_alpha(SAME + lone).tasks == 2


def random_judgements(rng: random.Random, tasks: int, annotators: int = 6, k: int = 4):
    """Tasks judged by 1-4 annotators, with ties, sometimes over a subset of the candidates."""
    out = []
    for t in range(tasks):
        ids = [t * 10 + i for i in range(k)]
        for a in rng.sample(range(annotators), rng.randint(1, 4)):
            shown = ids if rng.random() < 0.8 else rng.sample(ids, k - 1)
            out.append(Judgement(t, a, {c: rng.randint(1, 3) for c in shown}))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_agreement_matches_the_one_the_loop_page_shows(seed):
    js = random_judgements(random.Random(seed), 40)
    rows = []
    for j in js:
        groups = [
            sorted(c for c, r in j.ranks.items() if r == rank)
            for rank in sorted(set(j.ranks.values()))
        ]
        rows.append(RankingRow(task_id=j.task_id, annotator_id=j.annotator_id, groups=groups))
    assert pairwise_agreement(js).value == pytest.approx(app_pairwise_agreement(rows))


@pytest.mark.parametrize("seed", range(20))
def test_tau_b_matches_scipy_on_random_rankings_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    x, y = rng.integers(1, 4, n), rng.integers(1, 4, n)
    ours = tau_b(dict(enumerate(x.tolist())), dict(enumerate(y.tolist())))
    reference = kendalltau(x, y, variant="b").statistic
    if np.isnan(reference):
        assert ours is None
    else:
        assert ours == pytest.approx(reference)


def test_mean_tau_is_the_mean_of_scipy_over_task_and_annotator_pairs():
    js = random_judgements(random.Random(11), 60)
    expected = []
    by_task: dict[int, list[Judgement]] = {}
    for j in js:
        by_task.setdefault(j.task_id, []).append(j)
    for group in by_task.values():
        for i, first in enumerate(group):
            for second in group[i + 1 :]:
                common = sorted(first.ranks.keys() & second.ranks.keys())
                t = kendalltau(
                    [first.ranks[c] for c in common], [second.ranks[c] for c in common]
                ).statistic
                if not np.isnan(t):
                    expected.append(t)
    assert kendall_tau(js).comparisons == len(expected)
    assert kendall_tau(js).value == pytest.approx(np.mean(expected))


def reliability_data(js: list[Judgement]) -> np.ndarray:
    """The krippendorff package's shape: annotators x (task, candidate) units, NaN if missing."""
    units = sorted({(j.task_id, c) for j in js for c in j.ranks})
    coders = sorted({j.annotator_id for j in js})
    data = np.full((len(coders), len(units)), np.nan)
    for j in js:
        for c, r in j.ranks.items():
            data[coders.index(j.annotator_id), units.index((j.task_id, c))] = r
    return data


@pytest.mark.parametrize("seed", range(10))
def test_alpha_matches_the_krippendorff_package_on_random_rankings(seed):
    js = random_judgements(random.Random(seed), 30)
    reference = krippendorff.alpha(
        reliability_data=reliability_data(js), level_of_measurement="ordinal"
    )
    assert krippendorff_alpha(js).value == pytest.approx(reference, abs=1e-9)


def test_alpha_matches_the_package_when_annotators_mostly_agree():
    rng = random.Random(3)
    js = []
    for t in range(50):
        truth = rng.sample(range(1, 5), 4)
        for a in rng.sample(range(5), 3):
            ranks = [r if rng.random() < 0.8 else rng.randint(1, 4) for r in truth]
            js.append(Judgement(t, a, {t * 10 + i: r for i, r in enumerate(ranks)}))
    reference = krippendorff.alpha(
        reliability_data=reliability_data(js), level_of_measurement="ordinal"
    )
    assert reference > 0.5
    assert krippendorff_alpha(js).value == pytest.approx(reference, abs=1e-9)


def test_counts_kept_per_task_add_up_to_the_figure_over_all_tasks():
    js = random_judgements(random.Random(5), 40)
    first = [j for j in js if j.task_id < 20]
    rest = [j for j in js if j.task_id >= 20]
    assert pairwise_counts(first) + pairwise_counts(rest) == pairwise_counts(js)
    summed = tau_counts(first) + tau_counts(rest)
    assert summed.value == pytest.approx(tau_counts(js).value)
    assert (summed.comparisons, summed.tasks) == (tau_counts(js).comparisons, tau_counts(js).tasks)
    alpha = krippendorff_alpha(first) + krippendorff_alpha(rest)
    assert alpha.value == pytest.approx(krippendorff_alpha(js).value)
    assert (alpha.tasks, alpha.judgements) == (
        krippendorff_alpha(js).tasks,
        krippendorff_alpha(js).judgements,
    )
