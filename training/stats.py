"""Small statistics for evaluation results: pure Python, no torch.

The Wilson score interval for a proportion (Wilson 1927; Agresti & Coull 1998 recommend it over
the normal "Wald" interval, which collapses to a point at 0 or n successes and undercovers for
small n, exactly the sizes a quick evaluation has):

    centre = (p + z^2 / 2n) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)

with p = successes / n. A tie counts 1/2 of a win in our win rates (training/evaluate.py), so
`successes` may be fractional; the formula takes it as it is.

The interval assumes independent comparisons. Several samples of one prompt are not quite
independent (they share the prompt), so with `samples_per_prompt` > 1 the interval is somewhat
too narrow; one sample a prompt (the default) keeps it honest.
"""

from __future__ import annotations

import math

# Two-sided 95 %: the normal quantile 0.975.
Z_95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for successes out of n; (0, 1) when n is 0.

    >>> [round(x, 3) for x in wilson_interval(8, 10)]
    [0.49, 0.943]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def length_ratio(policy_lengths: list[int], parent_lengths: list[int]) -> float | None:
    """Mean length of the policy's samples over its parent's (words); None without samples.

    >>> length_ratio([10, 30], [10, 10])
    2.0
    """
    if not policy_lengths or not parent_lengths or not sum(parent_lengths):
        return None
    mean_pol = sum(policy_lengths) / len(policy_lengths)
    return mean_pol / (sum(parent_lengths) / len(parent_lengths))


def length_controlled_win_rate(outcomes: list[float], length_diffs: list[float]) -> float | None:
    """The win rate at equal length: a logistic regression of each comparison's outcome (1 win,
    1/2 tie, 0 loss) on the standardised length difference (policy - parent), read at zero
    difference (AlpacaEval's length-controlled win rate, in small). A policy that wins only by
    writing longer (or shorter) loses its edge here. A light ridge keeps the fit finite when
    length separates the outcomes. None without comparisons.

    >>> round(length_controlled_win_rate([1, 0, 1, 0], [0, 0, 0, 0]), 3)
    0.5
    >>> length_controlled_win_rate([1, 1, 0, 0], [5, 4, -4, -5]) < 0.6  # all from length
    True
    """
    n = len(outcomes)
    if n == 0:
        return None
    mean = sum(length_diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in length_diffs) / n)
    xs = [d / sd if sd > 0 else 0.0 for d in length_diffs]  # no centring: 0 is equal length
    a = b = 0.0
    ridge = 1.0
    for _ in range(50):  # Newton's method on the penalised log-likelihood
        ps = [1 / (1 + math.exp(-(a + b * x))) for x in xs]
        ga = sum(y - p for y, p in zip(outcomes, ps, strict=True)) - ridge * a
        gb = sum((y - p) * x for y, p, x in zip(outcomes, ps, xs, strict=True)) - ridge * b
        w = [p * (1 - p) for p in ps]
        haa = sum(w) + ridge
        hab = sum(wi * x for wi, x in zip(w, xs, strict=True))
        hbb = sum(wi * x * x for wi, x in zip(w, xs, strict=True)) + ridge
        det = haa * hbb - hab * hab
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        a, b = a + da, b + db
        if abs(da) + abs(db) < 1e-9:
            break
    return 1 / (1 + math.exp(-a))


__all__ = ["Z_95", "length_controlled_win_rate", "length_ratio", "wilson_interval"]
