"""The exact two-sided binomial test, so the bias figures need no scipy at run time.

Same rule as scipy.stats.binomtest(k, n, p).pvalue (checked against it in the tests): sum the
probabilities of every outcome no more likely than the one observed. Probabilities come from
math.lgamma rather than math.comb: C(1500, 750) overflows a float, and annotators with more
than a thousand rankings are the ones worth testing.
"""

from __future__ import annotations

import math

import numpy as np

# scipy's relative tolerance for "no more likely than observed" (floating-point equal pmfs).
_RELATIVE_TOLERANCE = 1 + 1e-7


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(X = i) for i in 0..n, X ~ Binomial(n, p)."""
    i = np.arange(n + 1)
    if p <= 0 or p >= 1:
        return (i == (0 if p <= 0 else n)).astype(float)
    log_comb = np.array(
        [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in i]
    )
    return np.exp(log_comb + i * math.log(p) + (n - i) * math.log1p(-p))


def binomial_test(k: int, n: int, p: float) -> float:
    """Two-sided exact p-value of k successes in n trials against success rate p.

    >>> round(binomial_test(9, 10, 0.5), 6)
    0.021484
    """
    if n == 0:
        return 1.0
    pmf = binomial_pmf(n, p)
    return float(min(1.0, pmf[pmf <= pmf[k] * _RELATIVE_TOLERANCE].sum()))
