"""The one path untrusted text (prompts, completions, guidelines) takes to become HTML.

Markdown is rendered with raw HTML disabled (so an embedded tag shows as text), then the result
passes nh3 with a short allow-list as the last line of defence: no script, no event handler, no
``javascript:`` URL can survive either step. Images are not allowed: a remote image in a
completion would let its author track who reads it. Nothing else in the code base may mark
model data safe.

Prompts and candidates are rendered once, when they are stored (`render_stored`), and keep the
HTML with the `RENDER_VERSION` that made it, as Discourse keeps "cooked" posts: the ranking page,
the hottest page, then renders no markdown at all (1.4 ms of 3.7 ms of CPU a page, measured).
Change anything above that alters the output (allow-list, markdown options) and bump the version
in the same commit: stored HTML of another version is not trusted and is rendered again on read.

Stored HTML certifies itself: beside it is a MAC (`html_digest`, keyed blake2b under a key derived
from SECRET_KEY) of the renderer version, the texts and the HTML, made only here, right after
rendering. On read (`stored_or_rendered`) HTML is trusted only if that MAC still matches, so
HTML left behind when the text changes by any path that skips rendering (``QuerySet.update()``,
raw SQL, a migration), or HTML written by anyone but this renderer (a staff user, a shell, SQL),
is never served: the current text is rendered instead. Checking costs a few µs a text
(docs/benchmarks.md, "The ranking page's render path").
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Sequence

import nh3
from django.conf import settings
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
DIGEST_LENGTH = 32  # hex characters of `html_digest` (128 bits)


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
    """The sanitised HTML of a text (to store: use `render_stored`, which also certifies it)."""
    return _render(text or "")


def render_stored(texts: Sequence[str]) -> tuple[list[str], str]:
    """The sanitised HTML of each text, and the digest that certifies them, to store beside."""
    htmls = [render_untrusted(t) for t in texts]
    return htmls, html_digest(texts, htmls)


def html_digest(texts: Sequence[str], htmls: Sequence[str]) -> str:
    """The MAC of (RENDER_VERSION, texts, their HTML) under this site's current key."""
    return _mac(_keys(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))[0], texts, htmls)


def is_certified(texts: Sequence[str], htmls: Sequence[str], version: int, digest: str) -> bool:
    """Whether `htmls` is what this renderer made of exactly `texts` (the digest matches)."""
    if version != RENDER_VERSION or len(digest or "") != DIGEST_LENGTH:
        return False
    if len(htmls) != len(texts) or not all(isinstance(h, str) for h in htmls):
        return False  # a JSON column may hold anything SQL put there
    # A fallback key (Django's SECRET_KEY_FALLBACKS) still certifies: rotating the key must not
    # send every page back to rendering. Each try costs one MAC, only while it does not match.
    return any(
        hmac.compare_digest(digest, _mac(key, texts, htmls))
        for key in _keys(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
    )


def stored_or_rendered(
    texts: Sequence[str], htmls: Sequence[str], version: int, digest: str
) -> list[SafeString]:
    """The stored HTML of each text when it is certified; otherwise the texts rendered now."""
    if is_certified(texts, htmls, version, digest):
        return [mark_safe(h) for h in htmls]  # noqa: S308 - certified: made by _render from texts
    return [render_markdown(t) for t in texts]


@functools.lru_cache(maxsize=4)
def _keys(secret: str, fallbacks: tuple[str, ...]) -> list[bytes]:
    """One MAC key per secret (current first), derived so it serves no other purpose."""
    return [
        hashlib.blake2b(s.encode(), digest_size=32, person=b"stored-html").digest()
        for s in (secret, *fallbacks)
    ]


def _mac(key: bytes, texts: Sequence[str], htmls: Sequence[str]) -> str:
    # Every part is length-prefixed, so no two different (texts, htmls) feed the same bytes.
    mac = hashlib.blake2b(
        key=key, digest_size=DIGEST_LENGTH // 2, person=f"html-v{RENDER_VERSION}".encode()
    )
    mac.update(len(texts).to_bytes(4, "little"))
    for part in (*texts, *htmls):
        data = (part or "").encode()
        mac.update(len(data).to_bytes(8, "little"))
        mac.update(data)
    return mac.hexdigest()


@functools.lru_cache(maxsize=2048)
def _render(text: str) -> str:
    """Markdown, then the sanitiser; memoised in this process, keyed by the text itself.

    Every annotator of a task, and every reload, shows the same prompt and candidates: parsing
    them is the costliest part of the ranking page (0.3 ms a text). Only the sanitiser's output
    is kept, and the allow-list cannot change while the process runs. In-process on purpose: a
    hit costs 7 µs here against 100 µs from Redis, and a miss costs nothing extra.
    """
    return sanitize_html(_md.render(text))
