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


__all__ = ["Z_95", "wilson_interval"]
