"""The Jinja2 environment for the ranking page and the quality dashboards.

Every ranking renders that page once, so its template cost is the product's throughput:
Django's template language took 0.82 ms for it, Jinja2 (compiled to Python) 0.34 ms with the
same context (docs/bench-annotate.md). The quality dashboards draw hundreds of rows and SVG
elements and must stay within 2x of the ranking page (issue 12; docs/benchmarks.md, "Quality
in the app"): in Django templates they were 3-10x. The other pages stay in Django templates.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from django.urls import reverse

from jinja2 import Environment

from .rendering import render_markdown


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def num(value: float | None, places: int = 2) -> str:
    """A number with `places` decimals, or "–" for none (Django's floatformat, for Jinja2)."""
    return "–" if value is None else f"{value:.{places}f}"


def environment(**options: Any) -> Environment:
    env = Environment(**options)
    env.globals.update(static=static, url=url, num=num)
    env.filters["markdown"] = render_markdown  # the one route from untrusted text to HTML
    return env
