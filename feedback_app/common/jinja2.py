"""The Jinja2 environment for the ranking page.

Every ranking renders that page once, so its template cost is the product's throughput:
Django's template language took 0.82 ms for it, Jinja2 (compiled to Python) 0.34 ms with the
same context (docs/bench-annotate.md). The other pages stay in Django templates.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from django.urls import reverse

from jinja2 import Environment

from .rendering import render_markdown


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def environment(**options: Any) -> Environment:
    env = Environment(**options)
    env.globals.update(static=static, url=url)
    env.filters["markdown"] = render_markdown  # the one route from untrusted text to HTML
    return env
