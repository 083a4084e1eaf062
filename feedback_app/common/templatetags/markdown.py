"""``{{ value|markdown }}``: the only template route for untrusted text to become HTML."""

from django import template

from feedback_app.common.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(value: str) -> str:
    return render_markdown(value)
