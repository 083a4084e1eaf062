"""Every page, loaded in Chromium with its Content-Security-Policy, reports no violation.

The project's user content (guidelines, prompts, candidates, a demonstration) holds what the
renderer turns into markup a policy may refuse: aligned tables (once `style="text-align:..."`,
1,220 violations on one page, issue 26), code, lists, links. Every page that shows user content
is visited: the ranking page, guidelines and their preview, a task's gold page, review, quality.
"""

from __future__ import annotations

import pytest

from feedback_app.annotation import services
from feedback_app.annotation.importing import check_records
from feedback_app.core.models import Job, Membership, Project
from feedback_app.preferences.dashboards import PAGES

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any of the page's own scripts (injected by the browser's debugger, which the
# page's policy does not govern) and records every violation the page reports.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  const what = e.blockedURI || "inline";
  window.__violations.push(`${e.violatedDirective} blocked ${what} in ${where}`);
});
"""


def open_checked(page, console: list[str], url: str, ready: str | None = None) -> list[str]:
    """Load `url`; return what the page reported against its policy (events and console)."""
    response = page.goto(url)
    assert response.ok or response.status == 429, (url, response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, (url, policy)
    page.wait_for_load_state("networkidle")
    reported = page.evaluate("window.__violations")
    if ready and page.locator(ready).count() == 0:  # its script was blocked, or failed
        reported.append(f"{ready} never appeared")
    reported += [text for text in console if "Content Security Policy" in text]
    console.clear()
    return reported


def watched(new_page) -> tuple[object, list[str]]:
    page = new_page()
    page.add_init_script(LISTEN)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    return page, console


# Every alignment markdown has, a code block, a list, a link: what user content renders to.
TABLE = "| left | centre | right | none |\n|:--|:-:|--:|---|\n| 1 | 2 | 3 | 4 |"
CONTENT = f"{TABLE}\n\n`code` and a [link](https://example.org)\n\n1. one\n2. two"


def _project_with_tables(root) -> Project:
    """A project whose guidelines, prompts and candidates all hold aligned tables."""
    project = Project.objects.create(
        name="P", candidates_per_task=3, annotations_per_task=2, guidelines=CONTENT
    )
    Membership.objects.create(project=project, user=root, role="admin")
    records = [
        (
            n,
            {
                "prompt": f"{CONTENT}\n\n{n}",
                "candidates": [f"{CONTENT}\n\n{n}.{j}" for j in range(3)],
            },
        )
        for n in (1, 2)
    ]
    services.prompts_import(project=project, records=check_records(records, k=3))
    return project


def test_every_page_loads_without_a_policy_violation(new_page, live_server, make_user, settings):
    root = make_user("root", is_staff=True, is_superuser=True)
    project = _project_with_tables(root)
    task = project.tasks.order_by("pk").first()
    job = Job.objects.create(project=project, kind="build_dataset", params={})
    base = live_server.url

    page, console = watched(new_page)
    assert open_checked(page, console, f"{base}/accounts/login/") == []
    login(page, live_server, "root", "pw-root")
    pages = {
        "home": (f"{base}/", None),
        "ranking": (f"{base}/projects/{project.pk}/annotate/", "[data-testid=candidate-A]"),
        "guidelines": (f"{base}/projects/{project.pk}/guidelines/", None),
        "import": (f"{base}/projects/{project.pk}/import/", None),
        "loop": (f"{base}/projects/{project.pk}/loop/", None),
        "models": (f"{base}/projects/{project.pk}/models/", None),
        "job": (f"{base}/jobs/{job.pk}/", None),
        "account": (f"{base}/account/", None),
        "new project": (f"{base}/projects/new/", None),
        "settings": (f"{base}/projects/{project.pk}/settings/", ".js-preview"),  # its script ran
        "members": (f"{base}/projects/{project.pk}/members/", None),
        "quality": (f"{base}/projects/{project.pk}/quality/", None),
        **{
            f"quality {figure}": (f"{base}/projects/{project.pk}/quality/{figure}/", None)
            for figure in PAGES
        },
        "gold": (f"{base}/projects/{project.pk}/tasks/{task.pk}/gold/", None),
        "review": (f"{base}/projects/{project.pk}/review/", None),
        "rounds": (f"{base}/projects/{project.pk}/rounds/", None),
        "audit log": (f"{base}/audit/", None),
        "api docs": (f"{base}/api/v1/docs/", ".swagger-ui .info"),  # drawn by its script
        "admin": (f"{base}/admin/", None),
    }
    found = {name: open_checked(page, console, url, ready) for name, (url, ready) in pages.items()}
    assert found == {name: [] for name in pages}
    # The tables were there, aligned by the stylesheet's classes (not by refused attributes).
    page.goto(pages["ranking"][0])
    cell = page.locator("[data-testid=candidate-A] td.align-right").first
    assert cell.evaluate("e => getComputedStyle(e).textAlign") == "right"

    settings.AXES_FAILURE_LIMIT = 1
    locked, locked_console = watched(new_page)
    locked.goto(f"{base}/accounts/login/")
    locked.fill("input[name=username]", "root")
    locked.fill("input[name=password]", "wrong")
    locked.click("form button[type=submit]")
    locked.wait_for_selector("[data-testid=locked-out]")
    assert locked.evaluate("window.__violations") == []


def test_the_check_would_see_an_inline_script(new_page, live_server):
    """The same listener on a page with an inline script reports it: the test above can fail."""
    page, console = watched(new_page)
    url = f"{live_server.url}/canary"
    page.route(
        url,
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/html", "Content-Security-Policy": "script-src 'self'"},
            body="<!doctype html><p>canary</p><script>document.title = 'ran'</script>",
        ),
    )
    reported = open_checked(page, console, url)
    assert reported and any("script-src" in r for r in reported)
    assert page.title() != "ran"


def test_the_check_would_see_a_style_attribute_in_a_table(new_page, live_server):
    """A table cell aligned by a style attribute, as stored HTML of renderer version 1 held,
    is a violation the listener reports: a page with tables fails the test above if any is left."""
    page, console = watched(new_page)
    url = f"{live_server.url}/canary"
    body = '<!doctype html><table><tr><td style="text-align:right">1</td></tr></table>'
    page.route(
        url,
        lambda route: route.fulfill(
            status=200,
            headers={
                "Content-Type": "text/html",
                "Content-Security-Policy": "script-src 'self'; style-src 'self'",
            },
            body=body,
        ),
    )
    reported = open_checked(page, console, url)
    assert reported and any("style-src" in r for r in reported), reported
