"""The one path untrusted text (prompts, completions, guidelines) takes to become HTML.

Markdown is rendered with raw HTML disabled (so an embedded tag shows as text), then the result
passes nh3 with a short allow-list as the last line of defence: no script, no event handler, no
``javascript:`` URL can survive either step. Images are not allowed: a remote image in a
completion would let its author track who reads it. Nothing else in the code base may mark
model data safe.

Prompts and candidates are rendered once, when they are stored (`render_untrusted`), and keep the
HTML with the `RENDER_VERSION` that made it, as Discourse keeps "cooked" posts: the ranking page,
the hottest page, then renders no markdown at all (1.4 ms of 3.7 ms of CPU a page, measured).
Change anything above that alters the output (allow-list, markdown options) and bump the version
in the same commit: stored HTML of another version is not trusted and is rendered again on read.
"""

from __future__ import annotations

import functools

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    "table"
)

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "th": {"style"},
    "td": {"style"},
    "ol": {"start"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

RENDER_VERSION = 1


def sanitize_html(html: str) -> str:
    """Drop every tag, attribute and URL scheme outside the allow-list."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )


def render_markdown(text: str) -> SafeString:
    """Render untrusted markdown to sanitised HTML that templates may insert as is."""
    return mark_safe(_render(text or ""))  # noqa: S308 - sanitised by _render


def render_untrusted(text: str) -> str:
    """The sanitised HTML to store beside a text (with `RENDER_VERSION`)."""
    return _render(text or "")


def stored_or_rendered(html: str, version: int, text: str) -> SafeString:
    """Stored HTML when this code made it; otherwise the text rendered now."""
    if version == RENDER_VERSION:
        return mark_safe(html)  # noqa: S308 - made by render_untrusted with this allow-list
    return render_markdown(text)


@functools.lru_cache(maxsize=2048)
def _render(text: str) -> str:
    """Markdown, then the sanitiser; memoised in this process, keyed by the text itself.

    Every annotator of a task, and every reload, shows the same prompt and candidates: parsing
    them is the costliest part of the ranking page (0.3 ms a text). Only the sanitiser's output
    is kept, and the allow-list cannot change while the process runs. In-process on purpose: a
    hit costs 7 µs here against 100 µs from Redis, and a miss costs nothing extra.
    """
    return sanitize_html(_md.render(text))
