"""Preference pairs as the API lists them (views/pairs.py)."""

from __future__ import annotations

from rest_framework import serializers

from feedback_app.preferences.pairs import BOTH, JUDGE, PEOPLE, VOTE_SOURCES, PairPolicy
from training.config import ranges

from .common import InstantField, _id_field

_MIN_VOTES = ranges(PairPolicy)["min_votes"]


class PairFilterSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=["jsonl", "json"],
        required=False,
        default="jsonl",
        help_text="jsonl: the whole export, streamed; json: one page, with `next`.",
    )
    metadata = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add votes, ties, judges, agreement, margin, models, round, task columns.",
    )
    min_agreement = serializers.FloatField(required=False, default=0.5, min_value=0, max_value=1)
    min_votes = serializers.IntegerField(
        required=False,
        default=PairPolicy.min_votes,
        min_value=_MIN_VOTES.low,
        max_value=_MIN_VOTES.high,
    )
    drop_all_bad = serializers.BooleanField(required=False, default=True)
    drop_unsafe = serializers.BooleanField(required=False, default=False)
    include_feedback = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add deployment feedback's pairs after the rankings' (none with `round`).",
    )
    include_edits = serializers.BooleanField(
        required=False,
        default=False,
        help_text='Add each edited candidate\'s edit over it (`origin: "edit"` in metadata).',
    )
    with_margin = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add each pair's vote strength as TRL's reward-model `margin` column.",
    )
    flagged_weight = serializers.FloatField(
        required=False,
        default=1.0,
        min_value=0,
        max_value=1,
        help_text="What a vote of an annotator the quality report flags counts (0: dropped).",
    )
    votes = serializers.ChoiceField(
        choices=list(VOTE_SOURCES),
        required=False,
        default="people",
        help_text="Whose rankings count: people, trusted AI judges, or both (docs/quality.md).",
    )
    judge_weight = serializers.FloatField(
        required=False,
        default=1.0,
        min_value=0,
        max_value=1,
        help_text="votes=both: what a trusted judge's vote counts beside a person's.",
    )
    round = _id_field(required=False)
    model = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Model version id, or source name: pairs with a candidate from that model.",
    )
    since = InstantField(
        required=False, help_text="Count only rankings submitted at or after this time."
    )
    cursor = serializers.CharField(required=False, help_text="format=json: the `next` page.")
    page_size = serializers.IntegerField(required=False, default=500, min_value=1, max_value=5000)


class PairRowSerializer(serializers.Serializer):
    """A row as TRL reads it: strings (standard) or message lists (conversational)."""

    prompt = serializers.JSONField()
    chosen = serializers.JSONField()
    rejected = serializers.JSONField()
    source = serializers.ChoiceField(
        choices=[PEOPLE, JUDGE, BOTH],
        required=False,
        help_text="In a project with AI judges: whose counted votes the pair rests on.",
    )


class PairPageSerializer(serializers.Serializer):
    results = PairRowSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Cursor of the next page, or null.")
