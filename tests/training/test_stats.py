"""The Wilson interval of a win rate: its known values, its shape, and its refusals."""

import math

import pytest

from training.stats import Z_95, wilson_interval


def test_matches_published_values():
    # Newcombe (1998), Table I: 81 of 263 -> 0.2553 .. 0.3662; 15 of 148 -> 0.0624 .. 0.1605.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)


def test_never_collapses_at_the_edges_unlike_the_normal_interval():
    low, high = wilson_interval(10, 10)
    # All won, yet the lower end is well below 1 (it is n / (n + z^2)).
    assert high == pytest.approx(1.0) and low == pytest.approx(10 / (10 + Z_95**2))
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(Z_95**2 / (10 + Z_95**2))


def test_lower_end_of_a_perfect_record_stays_below_one_for_any_n():
    for n in (1, 10, 1000, 10**6):
        assert wilson_interval(n, n)[0] < 1.0


def test_narrows_as_comparisons_grow_and_contains_the_rate():
    widths = []
    for n in (10, 100, 1000):
        low, high = wilson_interval(0.6 * n, n)
        assert low < 0.6 < high
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True)


def test_ties_as_half_wins_give_a_symmetric_interval_around_one_half():
    low, high = wilson_interval(2.0, 4)  # four ties
    assert low == pytest.approx(1 - high) and low < 0.5 < high


def test_no_comparisons_say_nothing():
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("successes", "n"), [(-1, 4), (5, 4), (1, -1), (math.nan, 4)])
def test_impossible_counts_are_refused(successes, n):
    with pytest.raises(ValueError):
        wilson_interval(successes, n)


def test_z_is_the_two_sided_95_percent_quantile():
    assert math.erf(Z_95 / math.sqrt(2)) == pytest.approx(0.95, abs=1e-12)


def test_doctests():
    import doctest

    from training import stats

    assert doctest.testmod(stats).failed == 0
