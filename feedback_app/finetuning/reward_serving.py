"""A reward model served to other engines: scores for texts, in OpenRLHF's `/get_reward` shape.

Teams training on Ray-based engines (OpenRLHF, verl) point their remote reward at
`POST /api/v1/reward-models/{id}/get_reward` with `{"query": [text, ...]}` and get
`{"rewards": [float, ...]}` (OpenRLHF's `openrlhf/cli/serve_rm.py`). A query is the full text
(prompt and response), as OpenRLHF sends it; the eos token is appended when missing, as the
reward model saw its training texts.

The model is loaded once a process and kept in a small LRU (`REWARD_SERVE_MODELS`): the first
request to a version pays the load, the next ones only the forward pass. torch is imported only
when a model is loaded, never when the web process starts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.models import ModelVersion

MAX_QUERIES = 256  # a request's queries; more: 400 naming `query`
MAX_QUERY_CHARS = 32_000  # a query's characters; more: 400 naming `query[i]`

_loaded: OrderedDict[str, Any] = OrderedDict()  # weights path -> RewardScorer, newest last
_lock = threading.Lock()


def check_queries(data: Any) -> list[str]:
    """The request body's `query` list, or InvalidInput naming what is wrong. Other keys that
    OpenRLHF sends along (`prompts`, `labels`) are ignored."""
    if not isinstance(data, dict):
        raise InvalidInput(Problem("query", 'send an object: {"query": [text, ...]}'))
    queries = data.get("query")
    if not isinstance(queries, list) or not queries:
        raise InvalidInput(Problem("query", "must be a non-empty list of texts"))
    if len(queries) > MAX_QUERIES:
        raise InvalidInput(
            Problem("query", f"at most {MAX_QUERIES} texts a request, got {len(queries)}")
        )
    for i, text in enumerate(queries):
        if not isinstance(text, str) or not text:
            raise InvalidInput(Problem(f"query[{i}]", "must be a non-empty text"))
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidInput(
                Problem(f"query[{i}]", f"at most {MAX_QUERY_CHARS} characters, got {len(text)}")
            )
    return queries


def reward_scorer(version: ModelVersion) -> Any:
    """The version's loaded `RewardScorer`, from this process's LRU (loaded on first use)."""
    from feedback_app.core.artifacts import local_model

    key = str(version.weights)
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    from training.reward import RewardScorer

    scorer = RewardScorer(local_model(key))
    with _lock:
        _loaded[key] = scorer
        _loaded.move_to_end(key)
        while len(_loaded) > max(1, int(getattr(settings, "REWARD_SERVE_MODELS", 2))):
            _loaded.popitem(last=False)
    return scorer


def loaded_models() -> list[str]:
    """The weights kept loaded in this process, oldest first (for tests and the admin)."""
    with _lock:
        return list(_loaded)


def reward_scores(*, version: ModelVersion, queries: list[str]) -> list[float]:
    """The reward of each full text under `version` (higher = preferred)."""
    scorer = reward_scorer(version)
    eos = scorer.tokenizer.eos_token or ""
    texts = [q if not eos or q.endswith(eos) else q + eos for q in queries]
    return [float(x) for x in scorer.score(texts)]
