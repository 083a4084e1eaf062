"""Chart geometry for the quality pages: numbers in, SVG coordinates out. No Django, no HTML.

The template `preferences/_chart.html` draws a `Chart` as inline SVG (autoescaped, so names of
annotators and models stay text), with the classes and proportions of the job page's loss curve
(`static/js/job.js`: a 600 x 220 view box, axes, ticks, a polyline): no JavaScript, no build step.
Three shapes cover the dashboards: a line chart with points (agreement over rounds, reward-model
accuracy against pairs), points with error bars (the leaderboard), horizontal bars (progress).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 600, 220
LEFT, BOTTOM, TOP, RIGHT = 64, 24, 8, 8
ROW = 22  # height of a row in the charts with one row per annotator or model


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    css: str = "tick"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str  # shown on hover (an SVG <title>)


@dataclass(frozen=True)
class Series:
    name: str
    css: str
    points: list[Point]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "whisker"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Chart:
    width: int
    height: int
    axes: list[Segment] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.series or self.bars)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _span(values: Sequence[float], low: float | None, high: float | None) -> tuple[float, float]:
    lo = min(values) if low is None else min(low, *values)
    hi = max(values) if high is None else max(high, *values)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def line_chart(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float, str]]]],
    *,
    x_label: str,
    y_low: float | None = None,
    y_high: float | None = None,
) -> Chart:
    """Lines through (x, y, title) points, one per (name, css class, points); None y skipped.

    >>> c = line_chart([("a", "s0", [(1, 0.5, "r1"), (2, 1.0, "r2")])], x_label="round")
    >>> c.series[0].polyline
    '64.0,196.0 592.0,8.0'
    """
    chart = Chart(WIDTH, HEIGHT)
    kept = [(n, css, [p for p in pts if p[1] is not None]) for n, css, pts in series]
    xs = [p[0] for _, _, pts in kept for p in pts]
    ys = [p[1] for _, _, pts in kept for p in pts]
    if not xs:
        return chart
    x0, x1 = _span(xs, None, None)
    y0, y1 = _span(ys, y_low, y_high)
    if len(set(xs)) == 1:
        x0, x1 = xs[0] - 1, xs[0] + 1

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * (HEIGHT - BOTTOM - TOP)

    _axes(chart, HEIGHT)
    chart.texts += [
        Text(LEFT - 4, TOP + 6, _fmt(y1), "end"),
        Text(LEFT - 4, HEIGHT - BOTTOM, _fmt(y0), "end"),
        Text(LEFT, HEIGHT - 6, f"{x_label} {_fmt(x0)}"),
        Text(WIDTH - RIGHT, HEIGHT - 6, _fmt(x1), "end"),
    ]
    for name, css, pts in kept:
        chart.series.append(Series(name, css, [Point(sx(x), sy(y), t) for x, y, t in pts]))
    return chart


def interval_chart(rows: Sequence[tuple[str, float, float, float]], *, x_label: str) -> Chart:
    """One row per (label, value, low, high): a point with an error bar from low to high."""
    height = TOP + ROW * len(rows) + BOTTOM
    chart = Chart(WIDTH, height)
    if not rows:
        return chart
    x0, x1 = _span([v for _, *vs in rows for v in vs], None, None)
    label_w = 140

    def sx(x: float) -> float:
        return label_w + (x - x0) / (x1 - x0) * (WIDTH - label_w - RIGHT)

    chart.axes.append(Segment(label_w, height - BOTTOM, WIDTH - RIGHT, height - BOTTOM, "axis"))
    if x0 < 0 < x1:
        chart.axes.append(Segment(sx(0), TOP, sx(0), height - BOTTOM, "axis zero"))
    chart.texts += [
        Text(label_w, height - 6, f"{x_label} {_fmt(x0)}"),
        Text(WIDTH - RIGHT, height - 6, _fmt(x1), "end"),
    ]
    points = []
    for i, (label, value, low, high) in enumerate(rows):
        y = TOP + ROW * i + ROW / 2
        chart.texts.append(Text(label_w - 6, y + 4, label, "end", "label"))
        chart.segments.append(Segment(sx(low), y, sx(high), y))
        chart.segments.append(Segment(sx(low), y - 5, sx(low), y + 5))
        chart.segments.append(Segment(sx(high), y - 5, sx(high), y + 5))
        points.append(Point(sx(value), y, f"{label}: {_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"))
    chart.series.append(Series(x_label, "s0 points-only", points))
    return chart


def bar_chart(rows: Sequence[tuple[str, Sequence[float]]], *, x_label: str) -> Chart:
    """One row per (label, values): stacked horizontal bars (classes s0, s1, ...) from 0."""
    height = TOP + ROW * len(rows) + BOTTOM
    chart = Chart(WIDTH, height)
    if not rows:
        return chart
    top = max((sum(vs) for _, vs in rows), default=0) or 1
    label_w = 140
    scale = (WIDTH - label_w - RIGHT) / top
    chart.axes.append(Segment(label_w, height - BOTTOM, WIDTH - RIGHT, height - BOTTOM, "axis"))
    chart.texts += [
        Text(label_w, height - 6, f"{x_label} 0"),
        Text(WIDTH - RIGHT, height - 6, _fmt(top), "end"),
    ]
    for i, (label, values) in enumerate(rows):
        y = TOP + ROW * i + 3
        chart.texts.append(Text(label_w - 6, y + 12, label, "end", "label"))
        x = label_w
        for k, v in enumerate(values):
            if v > 0:
                chart.bars.append(Bar(x, y, v * scale, ROW - 6, f"s{k}", f"{label}: {_fmt(v)}"))
            x += v * scale
    return chart


def _axes(chart: Chart, height: int) -> None:
    chart.axes.append(Segment(LEFT, height - BOTTOM, WIDTH - RIGHT, height - BOTTOM, "axis"))
    chart.axes.append(Segment(LEFT, TOP, LEFT, height - BOTTOM, "axis"))
