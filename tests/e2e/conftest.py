"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Playwright never downloads a browser here: it launches /usr/bin/chromium (apt package
`chromium`). Without it the tests are skipped on a workstation and fail in CI (CI is set).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

# Playwright's sync API drives its own asyncio event loop in the test thread, so Django sees a
# "running event loop" and raises SynchronousOnlyOperation on every ORM call the test makes
# (creating users, reading rankings back). Nothing here is async: the ORM calls run in the test
# thread between Playwright calls, never inside the loop, so the check is safe to disable.
# Set at import, not in a fixture: the session-wide browser's loop also wraps the database
# set-up and tear-down that pytest-django runs around the session.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MISSING = (
    "browser tests need Debian's chromium: apt-get install -y chromium "
    "(make test installs it when run as root)"
)


def chromium_path() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing in CI, where browser tests must run: {MISSING}")
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable]:
    """Open a page in a fresh context (own cookies); keyword arguments go to new_context."""
    contexts = []

    def make(**context_options):
        context = browser.new_context(**context_options)
        context.set_default_timeout(5_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def login(page, live_server, username: str, password: str) -> None:
    """Log in through the real login form and wait until the home page shows the user."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".topbar .who").inner_text() == username
