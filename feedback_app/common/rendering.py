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
ALIGN_CLASSES = {"align-left", "align-center", "align-right"}  # static/css/app.css styles them


def _alignment_as_class(state) -> None:
    """A table column's alignment as a class (`align-center`) instead of markdown-it's
    `style="text-align:center"`: the Content-Security-Policy refuses every style attribute,
    so stored HTML never holds one."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open") and (style := token.attrs.pop("style", None)):
            side = str(style).removeprefix("text-align:")
            if f"align-{side}" in ALIGN_CLASSES:
                token.attrSet("class", f"align-{side}")


_md.core.ruler.push("alignment_as_class", _alignment_as_class)

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "ol": {"start"},
}
# No style attribute anywhere (the CSP refuses them); table alignment is one of these classes.
ALLOWED_CLASSES = {"th": ALIGN_CLASSES, "td": ALIGN_CLASSES}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

# 2: table alignment as a class, no style attribute (annotation migration 0011 renders again).
RENDER_VERSION = 2
DIGEST_LENGTH = 32  # hex characters of `html_digest` (128 bits)


def sanitize_html(html: str) -> str:
    """Drop every tag, attribute and URL scheme outside the allow-list."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        allowed_classes=ALLOWED_CLASSES,
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
    return _mac(_keys()[0], texts, htmls)


def is_certified(texts: Sequence[str], htmls: Sequence[str], version: int, digest: str) -> bool:
    """Whether `htmls` is what this renderer made of exactly `texts` (the digest matches)."""
    if version != RENDER_VERSION or not digest or len(digest) != DIGEST_LENGTH:
        return False
    if not digest.isascii():
        return False  # compare_digest raises on non-ASCII str; SQL may have put anything there
    if len(htmls) != len(texts):
        return False
    for html in htmls:
        if not isinstance(html, str):
            return False  # a JSON column holds whatever SQL put there
    keys = _keys()
    if hmac.compare_digest(digest, _mac(keys[0], texts, htmls)):
        return True
    # A fallback key (Django's SECRET_KEY_FALLBACKS) still certifies: rotating the key must not
    # send every page back to rendering. Costs one MAC a key, only when the current one failed.
    return any(hmac.compare_digest(digest, _mac(key, texts, htmls)) for key in keys[1:])


def stored_or_rendered(
    texts: Sequence[str], htmls: Sequence[str], version: int, digest: str
) -> list[SafeString]:
    """The stored HTML of each text when it is certified; otherwise the texts rendered now."""
    if is_certified(texts, htmls, version, digest):
        return [mark_safe(h) for h in htmls]  # noqa: S308 - certified: made by _render from texts
    return [render_markdown(t) for t in texts]


_PERSON = f"html-v{RENDER_VERSION}".encode()  # the renderer version, bound into every MAC
_keyring: tuple[str, list[str], list[bytes]] = ("", [], [])


def _keys() -> list[bytes]:
    """The MAC keys (current first, then fallbacks), derived from the secret keys once."""
    global _keyring
    secret, fallbacks = settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS
    if _keyring[0] != secret or _keyring[1] != fallbacks:
        # Derived with its own purpose tag, so this key opens nothing else signed with SECRET_KEY.
        derived = [
            hashlib.blake2b(s.encode(), digest_size=32, person=b"stored-html").digest()
            for s in (secret, *fallbacks)
        ]
        _keyring = (secret, list(fallbacks), derived)
    return _keyring[2]


def _mac(key: bytes, texts: Sequence[str], htmls: Sequence[str]) -> str:
    # Every part is length-prefixed, so no two different (texts, htmls) feed the same bytes.
    mac = hashlib.blake2b(key=key, digest_size=DIGEST_LENGTH // 2, person=_PERSON)
    mac.update(len(texts).to_bytes(4, "little"))
    for parts in (texts, htmls):
        for part in parts:
            data = (part or "").encode("utf-8", "surrogatepass")  # JSON may hold a lone one
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
