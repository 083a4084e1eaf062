import pytest

from feedback_app.preferences.pairs import (
    PairPolicy,
    RankingRow,
    aggregate,
    keep_pairs,
    pairs_from_ranking,
    pairwise_agreement,
    select_rankings,
)


def test_a_ranking_gives_every_ordered_pair_across_groups():
    assert pairs_from_ranking([[1], [2], [3]]) == [(1, 2), (1, 3), (2, 3)]


def test_ties_give_no_pair():
    assert pairs_from_ranking([[7], [5, 9], [6]]) == [(7, 5), (7, 9), (7, 6), (5, 6), (9, 6)]
    assert pairs_from_ranking([[1, 2, 3]]) == []


def test_k_candidates_in_a_strict_order_give_k_choose_2_pairs():
    assert len(pairs_from_ranking([[i] for i in range(8)])) == 28


def votes_by_pair(rows):
    return {(v.a, v.b): v for v in aggregate(rows)}


def test_votes_are_counted_per_side_with_ties_and_annotators():
    rows = [
        RankingRow(task_id=1, annotator_id=10, groups=[[1], [2], [3]]),
        RankingRow(task_id=1, annotator_id=11, groups=[[2], [1], [3]]),
        RankingRow(task_id=1, annotator_id=12, groups=[[1, 2], [3]]),
    ]
    v = votes_by_pair(rows)
    assert (v[1, 2].for_a, v[1, 2].for_b, v[1, 2].ties) == (1, 1, 1)
    assert v[1, 2].chosen is None  # a draw: no majority
    assert (v[1, 3].for_a, v[1, 3].for_b, v[1, 3].ties) == (3, 0, 0)
    assert v[1, 3].chosen == 1 and v[1, 3].rejected == 3
    assert v[1, 3].agreement == 1.0 and v[1, 3].margin == 1.0
    assert sorted(v[2, 3].annotators) == [10, 11, 12]


def test_agreement_and_margin_with_many_annotators():
    rows = [RankingRow(1, a, [[1], [2]]) for a in range(6)] + [
        RankingRow(1, 6, [[2], [1]]),
        RankingRow(1, 7, [[1, 2]]),
    ]
    v = votes_by_pair(rows)[1, 2]
    assert (v.for_a, v.for_b, v.ties, v.total) == (6, 1, 1, 8)
    assert v.agreement == pytest.approx(6 / 8)
    assert v.margin == pytest.approx(5 / 8)


def test_pairs_of_different_tasks_are_kept_apart():
    rows = [RankingRow(1, 10, [[1], [2]]), RankingRow(2, 10, [[2], [1]])]
    assert [(v.task_id, v.chosen) for v in aggregate(rows)] == [(1, 1), (2, 2)]


def test_policy_keeps_pairs_meeting_votes_and_agreement():
    rows = [RankingRow(1, a, [[1], [2], [3]]) for a in range(2)] + [
        RankingRow(1, 9, [[3], [2], [1]])
    ]
    votes = aggregate(rows)
    loose = keep_pairs(votes, PairPolicy(min_votes=1, min_agreement=0.5))
    strict = keep_pairs(votes, PairPolicy(min_votes=3, min_agreement=0.5))
    assert len(loose) == 3 and strict == []
    assert keep_pairs(votes, PairPolicy(min_agreement=0.7)) == []


def test_policy_drops_all_bad_rankings_by_default_and_unsafe_on_request():
    rows = [
        RankingRow(1, 1, [[1], [2]], all_bad=True),
        RankingRow(1, 2, [[1], [2]], unsafe=True),
        RankingRow(1, 3, [[1], [2]]),
    ]
    assert len(select_rankings(rows, PairPolicy())) == 2
    assert len(select_rankings(rows, PairPolicy(drop_unsafe=True))) == 1
    assert len(select_rankings(rows, PairPolicy(drop_all_bad=False))) == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"min_votes": 0}, "min_votes"), ({"min_agreement": 1.5}, "min_agreement")],
)
def test_policy_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        PairPolicy(**kwargs)


def test_pairwise_agreement_counts_matching_verdicts():
    same = [RankingRow(1, a, [[1], [2]]) for a in range(3)]
    assert pairwise_agreement(same) == 1.0
    split = [RankingRow(1, 1, [[1], [2]]), RankingRow(1, 2, [[2], [1]])]
    assert pairwise_agreement(split) == 0.0
    assert pairwise_agreement([RankingRow(1, 1, [[1], [2]])]) is None


def test_people_have_the_last_word_and_a_judge_alone_counts_at_its_weight():
    """A person and a judge (id 9, weight 0.3) on task 1: the person decides the pair they
    disagree on, the judge's vote is set aside; the judge's lone pair of task 2 is kept (one
    vote meets min_votes 1) and weighs 0.3."""
    from feedback_app.preferences.pairs import PairPolicy, RankingRow, keep_pairs, people_first

    rankings = [
        RankingRow(1, 1, [[10], [11]]),
        RankingRow(1, 9, [[11], [10]]),
        RankingRow(2, 9, [[20], [21]]),
    ]
    votes, overruled = people_first(rankings, {9: 0.3}, {9})
    kept = keep_pairs(votes, PairPolicy(votes="both", judge_weight=0.3))
    assert overruled == 1
    assert [(v.task_id, v.chosen, v.weight, v.annotators) for v in kept] == [
        (1, 10, 1.0, [1]),
        (2, 20, 0.3, [9]),
    ]
