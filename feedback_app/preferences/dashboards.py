"""The quality figures of a stored report as the dashboards draw them (`charts` geometry).

Each function takes one figure's JSON (`reports`) and returns the page's context: tables are
the JSON itself, pictures are `charts.Chart`s. No query here: the report was read once.
"""

from __future__ import annotations

from .charts import Chart, bar_chart, interval_chart, line_chart
from .reports import learning_warning

# (key in a figure, label, css class of its line)
AGREEMENT_SERIES = (
    ("pairwise", "pairwise agreement", "s0"),
    ("tau_b", "Kendall's tau-b", "s1"),
    ("alpha", "Krippendorff's alpha", "s2"),
)


def agreement_chart(figure: dict) -> Chart:
    """Each agreement figure over rounds."""
    return line_chart(
        [
            (
                label,
                css,
                [
                    (r["round"], r[key]["value"], f"round {r['round']}: {label} {r[key]['value']}")
                    for r in figure["rounds"]
                ],
            )
            for key, label, css in AGREEMENT_SERIES
        ],
        x_label="round",
        y_low=0.0,
        y_high=1.0,
    )


def judges_chart(figure: list[dict]) -> Chart:
    """Each judge's agreement with gold and with people, with its interval, beside the people's
    own on the same tasks."""
    rows = []
    for j in figure:
        for ref in ("gold", "people"):
            f = j[ref]
            for label, i in ((j["name"], f["agreement"]), ("people", f["reference_agreement"])):
                if i["value"] is not None:
                    rows.append((f"{label} vs {ref}", i["value"], i["low"], i["high"]))
    return interval_chart(rows, x_label="agreement")


def leaderboard_chart(figure: dict) -> Chart:
    """Bradley-Terry strengths with their bootstrap intervals, strongest first."""
    return interval_chart(
        [(s["name"], s["strength"], s["low"], s["high"]) for s in figure["standings"]],
        x_label="strength",
    )


def win_rows(figure: dict) -> list[dict]:
    """The head-to-head matrix as table rows: each cell the row model's win rate and games."""
    m = figure["win_matrix"]
    rows = []
    for i, model in enumerate(m["models"]):
        cells = []
        for j in range(len(m["models"])):
            games = m["games"][i][j]
            rate = m["wins"][i][j] / games if games and i != j else None
            cells.append({"rate": rate, "games": games, "self": i == j})
        rows.append({"name": model["name"], "cells": cells})
    return rows


def progress_chart(figure: list[dict]) -> Chart:
    """Rankings done (and tasks skipped, stacked) per annotator."""
    return bar_chart(
        [(p["annotator"], [p["rankings"], p["skips"]]) for p in figure], x_label="tasks"
    )


def reward_models_chart(figure: list[dict]) -> Chart:
    """Held-out accuracy of each reward model against the pairs it was trained on."""
    points = [
        (r["train_pairs"], r["heldout_accuracy"], f"{r['name']}: {r['heldout_accuracy']}")
        for r in figure
        if r["train_pairs"] is not None and r["heldout_accuracy"] is not None
    ]
    return line_chart([("held-out accuracy", "s0", points)], x_label="pairs", y_low=0.5, y_high=1)


def learning_curve_chart(figure: list[dict]) -> Chart:
    """Yardstick accuracy of each reward model against the rankings it was trained on, with
    the 95 % interval's ends as a second and third line (no error-bar shape on a line chart)."""
    rows = [
        r
        for r in figure
        if r.get("rankings") is not None and r.get("yardstick_accuracy") is not None
    ]
    series = [
        (name, css, [(r["rankings"], r[key], f"{r['name']}: {r[key]:.3f}") for r in rows])
        for key, name, css in (
            ("yardstick_accuracy", "yardstick accuracy", "s0"),
            ("yardstick_low", "95 % low", "s1"),
            ("yardstick_high", "95 % high", "s2"),
        )
    ]
    return line_chart(series, x_label="rankings", y_low=0.0, y_high=1.0)


PAGES = {
    "agreement": "Agreement",
    "reliability": "Annotators",
    "leaderboard": "Leaderboard",
    "progress": "Progress",
    "reward_models": "Reward models",
    "judges": "AI judges",
}


def rate_text(rate: dict, tested: bool = False) -> str:
    """A stored Rate as a table cell: "0.85 of 120", or "0.62 (0.25; 3.1e-05)" when tested.

    A function rather than a template macro: the reliability table calls it four times a row,
    and a Jinja2 macro call cost more than the rest of the row (docs/benchmarks.md).
    """
    if rate["value"] is None:
        return "–"
    if tested and rate["expected"] is not None and rate["p_value"] is not None:
        return f"{rate['value']:.2f} ({rate['expected']:.2f}; {rate['p_value']:.1e})"
    return f"{rate['value']:.2f} of {rate['trials']}"


# Rows a page of the per-annotator tables shows: 200 annotators' rows made the page 5x the
# ranking page's time (docs/benchmarks.md, "Quality in the app"); the flagged are listed above.
ROWS_PER_PAGE = 50
PAGED = ("reliability", "progress")


def page_context(figure_name: str, figures: dict, page: int = 1) -> dict:
    """What a dashboard's template needs of the stored figures (`page`: of the long tables)."""
    figure = figures.get(figure_name)
    context: dict = {"figure": figure, "rate": rate_text, "page_number": 1, "page_count": 1}
    if figure is None:
        return context
    if figure_name in PAGED:
        count = max(1, -(-len(figure) // ROWS_PER_PAGE))
        page = min(max(page, 1), count)
        context.update(page_number=page, page_count=count, rows_total=len(figure))
        if figure_name == "reliability":
            context["flagged"] = [r for r in figure if r["flags"]]
        figure = context["figure"] = figure[(page - 1) * ROWS_PER_PAGE : page * ROWS_PER_PAGE]
    if figure_name == "agreement":
        context["chart"] = agreement_chart(figure)
    elif figure_name == "leaderboard":
        context["chart"] = leaderboard_chart(figure)
        context["win_rows"] = win_rows(figure)
        context["reward_models"] = figures.get("reward_models", [])
    elif figure_name == "progress":
        context["chart"] = progress_chart(figure)
    elif figure_name == "reward_models":
        context["chart"] = reward_models_chart(figure)
        context["learning_chart"] = learning_curve_chart(figure)
        context["learning_warning"] = learning_warning(figure)
    elif figure_name == "judges":
        context["chart"] = judges_chart(figure)
    return context
