"""The quality report's JSON (`preferences.reports`) as the schema documents it.

The views pass the stored figures through these serializers, so the schema cannot drift from
what is served: a figure missing a documented field fails (tests/api/test_quality.py).
"""

from __future__ import annotations

from rest_framework import serializers

from feedback_app.preferences.dashboards import PAGES

FIGURE_CHOICES = list(PAGES)


class PairwiseSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="agreeing / compared")
    agreeing = serializers.IntegerField()
    compared = serializers.IntegerField(help_text="Annotator pairs that judged a candidate pair.")
    tasks = serializers.IntegerField()
    judgements = serializers.IntegerField()


class TauSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="Mean tau-b over comparisons.")
    comparisons = serializers.IntegerField(help_text="(task, annotator pair) comparisons.")
    undefined = serializers.IntegerField(help_text="Comparisons where one side tied everything.")
    tasks = serializers.IntegerField()
    judgements = serializers.IntegerField()


class AlphaSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha, ordinal.")
    units = serializers.IntegerField(help_text="(task, candidate) units with two values or more.")
    tasks = serializers.IntegerField()
    judgements = serializers.IntegerField()


class AgreementSetSerializer(serializers.Serializer):
    pairwise = PairwiseSerializer()
    tau_b = TauSerializer()
    alpha = AlphaSerializer()


class RoundAgreementSerializer(AgreementSetSerializer):
    round = serializers.IntegerField()


class AgreementSerializer(serializers.Serializer):
    project = AgreementSetSerializer()
    rounds = RoundAgreementSerializer(many=True)


class RateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    hits = serializers.FloatField()
    trials = serializers.IntegerField()
    expected = serializers.FloatField(allow_null=True, help_text="What the test compares with.")
    p_value = serializers.FloatField(allow_null=True, help_text="Exact two-sided binomial test.")


class FlagSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="majority, gold, position, length, fast or skips")
    reason = serializers.CharField()


class ReliabilitySerializer(serializers.Serializer):
    annotator_id = serializers.IntegerField()
    annotator = serializers.CharField()
    rankings = serializers.IntegerField()
    median_seconds = serializers.FloatField(allow_null=True)
    majority_agreement = RateSerializer(help_text="Leave-one-out agreement with the majority.")
    gold_accuracy = RateSerializer()
    skips = serializers.IntegerField()
    skip_rate = serializers.FloatField(allow_null=True)
    position_bias = RateSerializer(help_text="First shown ranked first, against 1/K.")
    length_bias = RateSerializer(help_text="Longer candidate preferred, against the peers.")
    flags = FlagSerializer(many=True)


class ModelRefSerializer(serializers.Serializer):
    model_version = serializers.IntegerField(allow_null=True, help_text="null: a source name.")
    name = serializers.CharField()


class StandingSerializer(ModelRefSerializer):
    strength = serializers.FloatField(help_text="Bradley-Terry log-strength, mean 0.")
    low = serializers.FloatField()
    high = serializers.FloatField()
    score = serializers.FloatField(help_text="Wins plus half the ties.")
    games = serializers.IntegerField()


class WinMatrixSerializer(serializers.Serializer):
    models = ModelRefSerializer(many=True)
    wins = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    games = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


class LeaderboardSerializer(serializers.Serializer):
    standings = StandingSerializer(many=True)
    comparisons = serializers.IntegerField()
    tasks = serializers.IntegerField()
    replicates = serializers.IntegerField()
    level = serializers.FloatField()
    win_matrix = WinMatrixSerializer()


class RoundCountSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    rankings = serializers.IntegerField()


class AnnotatorProgressSerializer(serializers.Serializer):
    annotator_id = serializers.IntegerField()
    annotator = serializers.CharField()
    rankings = serializers.IntegerField()
    skips = serializers.IntegerField()
    by_round = RoundCountSerializer(many=True)


class RewardModelSerializer(serializers.Serializer):
    model_version = serializers.IntegerField()
    name = serializers.CharField()
    is_active = serializers.BooleanField()
    train_pairs = serializers.IntegerField(allow_null=True)
    heldout_accuracy = serializers.FloatField(allow_null=True)
    heldout_pairs = serializers.IntegerField(allow_null=True)
    created_at = serializers.CharField()


class IntervalSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95 % bootstrap over tasks.")
    high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(help_text="Pairs or comparisons it rests on.")


class JudgeFiguresSerializer(serializers.Serializer):
    reference = serializers.ChoiceField(choices=["gold", "people"])
    tasks = serializers.IntegerField()
    agreement = IntervalSerializer()
    decided_accuracy = IntervalSerializer()
    kappa = IntervalSerializer()
    tau_b = IntervalSerializer()
    position_consistency = IntervalSerializer()
    picks_first_shown = IntervalSerializer()
    longer_preferred = IntervalSerializer()
    reference_longer_preferred = IntervalSerializer()
    length_gap = IntervalSerializer()
    reference_agreement = IntervalSerializer(help_text="The people's own figure: the yardstick.")


class JudgeCalibrationSerializer(serializers.Serializer):
    judge = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    min_agreement = serializers.FloatField(help_text="The project's judge_min_agreement.")
    trusted = serializers.BooleanField(help_text="Its votes may count (docs/quality.md).")
    flags = FlagSerializer(many=True)
    gold = JudgeFiguresSerializer()
    people = JudgeFiguresSerializer()


class FiguresSerializer(serializers.Serializer):
    agreement = AgreementSerializer()
    reliability = ReliabilitySerializer(many=True)
    leaderboard = LeaderboardSerializer()
    progress = AnnotatorProgressSerializer(many=True)
    reward_models = RewardModelSerializer(many=True)
    judges = JudgeCalibrationSerializer(many=True)


FIGURE_SERIALIZERS = {name: field for name, field in FiguresSerializer().fields.items()}


class ReportStatusSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True, help_text="How long the refresh took.")
    rankings_count = serializers.IntegerField(allow_null=True)
    new_rankings = serializers.IntegerField(help_text="Rankings since (at most 1000 counted).")
    stale = serializers.BooleanField()


class QualityReportSerializer(ReportStatusSerializer):
    figures = FiguresSerializer(allow_null=True, help_text="null until the first refresh.")


class RefreshSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
