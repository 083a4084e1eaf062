"""AI judges on tiny local models: both orders asked, ties on disagreement, rankings by Copeland.

The tiny bootstrapped LM puts far more probability on "A" than on "B" whatever it is shown, so it
is a real judge with a total position bias: every comparison must come out position-inconsistent
and tied. The reward-model judge (the tiny LM with a fresh one-output head) orders by score and is
consistent by construction. The chat judge talks to a real `transformers serve` process.
"""

from __future__ import annotations

import logging

import pytest

from tests.model_server import free_port
from training.judges import TIE, Asked, Cost, JudgeError, combine_orders, copeland_groups
from training.judges.local import CausalLMJudge, RewardModelJudge
from training.judges.openai_chat import OpenAIChatJudge
from training.judges.prompts import check_template, parse_verdict

PROMPTS = {
    "The list type is": [" a mutable sequence.", " an error.", " a list of values in order."],
    "A function call": [" passes arguments.", " returns a value to the caller."],
}
KEY = "sk-test-7f3a9c1e-do-not-leak"


# --- the rules, on hand-made answers -------------------------------------------------------------


def test_orders_that_agree_give_their_verdict_and_orders_that_disagree_a_tie():
    agree = combine_orders(Asked(0.4, "A", Cost(10, 0.1)), Asked(-0.2, "B", Cost(12, 0.1)))
    assert (agree.verdict, agree.consistent, agree.margin) == (1, True, pytest.approx(0.3))
    assert agree.cost == Cost(22, 0.2)
    first_twice = combine_orders(Asked(0.9, "A", Cost()), Asked(0.7, "A", Cost()))
    assert (first_twice.verdict, first_twice.consistent) == (TIE, False)
    assert (first_twice.a_first, first_twice.b_first) == (1, -1)


def test_a_preference_within_the_tie_threshold_is_a_tie_in_that_order():
    v = combine_orders(Asked(0.05, "", Cost()), Asked(-0.5, "", Cost()), tie_threshold=0.1)
    assert (v.a_first, v.b_first, v.verdict, v.consistent) == (TIE, 1, TIE, False)


def test_copeland_groups_tie_equal_scores_and_order_the_rest_best_first():
    # 0 beats everyone, 3 loses to everyone, 1 and 2 tie each other: scores 3, 0, 0, -3.
    verdicts = [(0, 1, 1), (0, 2, 1), (0, 3, 1), (1, 2, 0), (1, 3, 1), (2, 3, 1)]
    assert copeland_groups(4, verdicts) == ([[0], [1, 2], [3]], [3, 0, 0, -3])


def test_a_reply_is_read_from_its_opening_letter_and_an_unclear_one_is_no_verdict():
    assert [parse_verdict(t) for t in ("A", " B.", "**A** because", "Answer B", "a bit")] == [
        1,
        -1,
        1,
        -1,
        0,
    ]


def test_a_template_without_a_field_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"\{second\}"):
        check_template("{prompt} {first}")
    with pytest.raises(ValueError, match=r"unknown field \{third\}"):
        check_template("{prompt} {first} {second} {third}")


# --- a local causal LM ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_judge(tiny_base_model):
    return CausalLMJudge(tiny_base_model)


def test_a_position_biased_lm_judge_ties_every_pair_and_records_the_inconsistency(lm_judge):
    for prompt, candidates in PROMPTS.items():
        ranking = lm_judge.rank(prompt, candidates)
        k = len(candidates)
        assert len(ranking.comparisons) == k * (k - 1) // 2
        for c in ranking.comparisons:
            assert (c.verdict.a_first, c.verdict.b_first) == (1, -1)  # "A" both times
            assert c.verdict.verdict == TIE and not c.verdict.consistent
            assert "[a shown first] P(A)=" in c.verdict.rationale
            assert "[b shown first] P(A)=" in c.verdict.rationale
        assert ranking.inconsistent == len(ranking.comparisons)
        assert ranking.groups == [list(range(k))] and ranking.confidence == 0.0
        assert ranking.cost.tokens > 0 and ranking.cost.seconds > 0


def test_the_same_answer_shown_twice_gets_no_margin_from_an_lm_judge(lm_judge):
    v = lm_judge.compare("The list type is", " a sequence.", " a sequence.")
    assert v.margin == pytest.approx(0.0, abs=1e-6) and v.verdict == TIE


def test_a_generating_lm_judge_returns_its_text_as_the_rationale(lm_judge):
    judge = CausalLMJudge(lm_judge.loaded, mode="generate", max_new_tokens=4)
    ranking = judge.rank("A function call", PROMPTS["A function call"])
    (c,) = ranking.comparisons
    assert c.verdict.rationale.startswith("[a shown first] ")
    assert c.verdict.cost.tokens > 2 * 4  # the two questions and what was generated
    # The verdict is what the two generated texts say, read the same way as any reply.
    a_first, b_first = c.verdict.rationale.split("\n[b shown first] ")
    assert c.verdict.a_first == parse_verdict(a_first.removeprefix("[a shown first] "))
    assert c.verdict.b_first == -parse_verdict(b_first)


# --- a reward model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reward_model_dir(tiny_base_model, tmp_path_factory) -> str:
    """The tiny LM with a one-output head (seeded): a reward model that scores texts apart."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("rm")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=1)
    model.config.pad_token_id = 1
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(out)
    return str(out)


def test_a_reward_model_judge_ranks_by_score_and_is_consistent(reward_model_dir):
    judge = RewardModelJudge(reward_model_dir)
    prompt, candidates = "The list type is", PROMPTS["The list type is"]
    scores = judge.scorer.score_completions([prompt] * 3, candidates)
    ranking = judge.rank(prompt, candidates)
    assert ranking.inconsistent == 0
    assert ranking.groups == [[i] for i in sorted(range(3), key=lambda i: -scores[i])]
    for c in ranking.comparisons:
        assert c.verdict.margin == pytest.approx(scores[c.i] - scores[c.j], abs=1e-5)
        assert c.verdict.verdict == (1 if scores[c.i] > scores[c.j] else -1)


# --- an OpenAI-compatible endpoint: a real `transformers serve` ----------------------------------


@pytest.mark.server
def test_a_chat_endpoint_judge_asks_a_real_server_in_both_orders_and_never_shows_the_key(
    chat_server, caplog
):
    base_url, model = chat_server
    judge = OpenAIChatJudge(base_url=base_url, model=model, api_key=KEY, max_tokens=4)
    with caplog.at_level(logging.DEBUG):
        v = judge.compare("A function call", " passes arguments.", " returns a value.")
    assert v.cost.tokens > 0 and v.cost.seconds > 0  # the server's usage, both requests
    assert v.rationale.startswith("[a shown first]") and "\n[b shown first]" in v.rationale
    assert v.verdict == (v.a_first if v.consistent else TIE)
    assert caplog.records  # the client did log (so the check below looked at something)
    assert KEY not in caplog.text and KEY not in repr(judge) and KEY not in str(judge)

    wrong = OpenAIChatJudge(base_url=base_url, model="no/such-model", api_key=KEY, max_tokens=2)
    with pytest.raises(JudgeError) as raised:
        wrong.compare("p", " a", " b")
    assert KEY not in str(raised.value) and raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_a_chat_judge_that_cannot_connect_says_so_without_the_key(caplog):
    judge = OpenAIChatJudge(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", api_key=KEY, max_retries=0
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(JudgeError, match="did not answer"):
        judge.compare("p", " a", " b")
    assert KEY not in caplog.text


def test_an_error_that_quotes_the_key_is_redacted():
    from training.judges.openai_chat import _redactor

    assert (
        _redactor(KEY)(f"Incorrect API key provided: {KEY}.") == "Incorrect API key provided: ***."
    )
