"""The project's fixed evaluation set (preferences/dataset.py, `in_eval_set`): which prompts
are in it, how many a round asks about, and the prompts an evaluation samples.

A round asks about a share of evaluation-set prompts drawn at random beside the ones its rule
chose, so people rank them too: their pairs are the reward model's random yardstick (held out,
never trained on) and its learning curve. Active selection scores only the other prompts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from feedback_app.annotation.models import Prompt
from feedback_app.core.models import Project
from feedback_app.preferences.dataset import EVAL_SET_FRACTION, in_eval_set


def is_eval_prompt(prompt: Prompt) -> bool:
    return in_eval_set(prompt.content_hash)


def split_pool(prompts: Sequence[Prompt]) -> tuple[list[Prompt], list[Prompt]]:
    """(evaluation-set prompts, the others), each in the given order."""
    held = [p for p in prompts if is_eval_prompt(p)]
    ids = {p.pk for p in held}
    return held, [p for p in prompts if p.pk not in ids]


def eval_share(round_size: int, fraction: float = EVAL_SET_FRACTION) -> int:
    """How many of a round's `round_size` prompts come from the evaluation set (at random).

    >>> eval_share(64), eval_share(4), eval_share(1)
    (13, 1, 0)
    """
    if round_size < 2:
        return 0
    return max(1, round(round_size * fraction))


def draw_eval_prompts(pool: Sequence[Prompt], n: int, *, seed: int) -> list[Prompt]:
    """A seeded random draw of `n` evaluation-set prompts (never a rule's pick)."""
    if n <= 0 or not pool:
        return []
    chosen = {p.pk for p in random.Random(seed).sample(list(pool), min(n, len(pool)))}
    return [p for p in pool if p.pk in chosen]


def eval_set_prompts(*, project: Project) -> list[Prompt]:
    """The project's evaluation-set prompts, oldest first (the same every evaluation)."""
    return [p for p in Prompt.objects.filter(project=project).order_by("id") if is_eval_prompt(p)]
