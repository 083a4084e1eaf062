"""AI judges: compare two completions (both orders) and rank K by pairwise comparisons.

Django-free like the rest of `training`. The common interface is `PairwiseJudge`
(`compare(prompt, a, b) -> Verdict`, `rank(prompt, candidates) -> JudgeRanking`); the kinds are
`CausalLMJudge` and `RewardModelJudge` (`judges.local`, torch) and `OpenAIChatJudge`
(`judges.openai_chat`, the `openai` client). Import those modules directly: this package imports
neither torch nor openai, so the pure parts (aggregation, verdict rules) stay cheap to import.
"""

from training.judges.base import (
    A_BETTER,
    B_BETTER,
    TIE,
    Asked,
    Cost,
    JudgeError,
    JudgeRanking,
    PairVerdict,
    PairwiseJudge,
    Verdict,
    combine_orders,
    copeland_groups,
    order_verdict,
)

__all__ = [
    "A_BETTER",
    "B_BETTER",
    "TIE",
    "Asked",
    "Cost",
    "JudgeError",
    "JudgeRanking",
    "PairVerdict",
    "PairwiseJudge",
    "Verdict",
    "combine_orders",
    "copeland_groups",
    "order_verdict",
]
