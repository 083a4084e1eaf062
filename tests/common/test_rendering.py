from html.parser import HTMLParser

import pytest

from feedback_app.common.rendering import render_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    "<details open ontoggle=alert(1)>",
    '"><script>alert(1)</script>',
    "![x](https://tracker.example/p.png)",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
]


class Elements(HTMLParser):
    """Collect the real elements and attributes a browser would build from the HTML."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_untrusted_markdown_never_yields_script_handlers_or_script_urls(payload):
    html = render_markdown(f"before {payload} after\n\n{payload}")
    for tag, attrs in Elements(html).found:
        assert tag not in {"script", "iframe", "svg", "img", "style", "details", "object"}, html
        for name, value in attrs:
            assert not name.startswith("on"), html
            if name in {"href", "src"}:
                assert (value or "").lower().startswith(("http://", "https://", "mailto:")), html
    assert "before" in html and "after" in html


def test_markdown_code_blocks_and_tables_are_kept():
    html = render_markdown("```python\nprint('<b>')\n```\n\n| a |\n|---|\n| 1 |\n\n**bold** `x`")
    assert '<pre><code class="language-python">' in html
    assert "&lt;b&gt;" in html
    assert "<table>" in html and "<strong>bold</strong>" in html and "<code>x</code>" in html


def test_links_get_rel_noopener():
    html = render_markdown("[docs](https://example.org)")
    assert 'href="https://example.org"' in html and "noopener" in html


def test_stored_html_is_certified_only_for_its_own_text_html_renderer_and_key(settings):
    from feedback_app.common.rendering import RENDER_VERSION, is_certified, render_stored

    texts = ["*a*", "b"]
    htmls, digest = render_stored(texts)
    assert is_certified(texts, htmls, RENDER_VERSION, digest)
    assert not is_certified(["*a*", "c"], htmls, RENDER_VERSION, digest)
    assert not is_certified(texts, [htmls[0], "<p>c</p>\n"], RENDER_VERSION, digest)
    assert not is_certified(texts, htmls, RENDER_VERSION + 1, digest)
    assert not is_certified(["*a*b"], ["".join(htmls)], RENDER_VERSION, digest)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "another site's key" + "x" * 40
    assert not is_certified(texts, htmls, RENDER_VERSION, digest)
    settings.SECRET_KEY_FALLBACKS = [old]  # a rotated key keeps what it certified
    assert is_certified(texts, htmls, RENDER_VERSION, digest)
