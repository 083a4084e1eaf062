import pytest

from feedback_app.annotation.rankings import (
    check_flags,
    check_ranking,
    check_rationale,
    display_order,
    groups_from_ranks,
    payload_hash,
)
from feedback_app.common.errors import InvalidInput


def test_ranking_with_ties_is_normalised_inside_groups():
    assert check_ranking([[3], [2, 1]], [1, 2, 3]) == [[3], [1, 2]]


@pytest.mark.parametrize(
    ("groups", "field", "text"),
    [
        ([], "ranking", "list of groups"),
        ("1,2,3", "ranking", "list of groups"),
        ([[1], []], "ranking[1]", "non-empty"),
        ([[1], [1], [2, 3]], "ranking[1]", "appears twice"),
        ([[1], [2], [3], [4]], "ranking[3]", "not in this task"),
        ([[1], [2]], "ranking", "not ranked"),
        ([[1], ["2"], [3]], "ranking[1]", "not a candidate id"),
        ([[True], [2], [3]], "ranking[0]", "not a candidate id"),
    ],
)
def test_ranking_must_cover_each_candidate_exactly_once(groups, field, text):
    with pytest.raises(InvalidInput) as err:
        check_ranking(groups, [1, 2, 3])
    assert err.value.field == field
    assert text in str(err.value)


def test_equal_rank_numbers_become_a_tie():
    assert groups_from_ranks({10: 2, 11: 1, 12: 2, 13: 4}) == [[11], [10, 12], [13]]


def test_unknown_flag_is_refused_by_name():
    with pytest.raises(InvalidInput, match="unknown flags \\['spam'\\]"):
        check_flags(["unsafe", "spam"])
    assert check_flags(["unsafe", "all_bad", "unsafe"]) == ["all_bad", "unsafe"]


def test_required_rationale_must_not_be_blank():
    with pytest.raises(InvalidInput) as err:
        check_rationale("   ", required=True)
    assert err.value.field == "rationale"
    assert check_rationale(" ok ", required=True) == "ok"


def test_display_order_is_stable_per_annotator_and_differs_between_them():
    ids = list(range(100, 108))
    first = display_order(ids, task_id=1, annotator_id=1)
    assert first == display_order(list(reversed(ids)), task_id=1, annotator_id=1)
    assert sorted(first) == ids
    others = {tuple(display_order(ids, task_id=1, annotator_id=a)) for a in range(2, 12)}
    assert len(others) > 1


def test_payload_hash_changes_with_any_part_of_the_payload():
    base = payload_hash([[1], [2]], "", [])
    assert base == payload_hash([[1], [2]], "", [])
    assert base != payload_hash([[2], [1]], "", [])
    assert base != payload_hash([[1], [2]], "why", [])
    assert base != payload_hash([[1], [2]], "", ["unsafe"])
