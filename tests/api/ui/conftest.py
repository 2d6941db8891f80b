"""A real headless Chromium (Debian's, `make browser` installs it) driven by Playwright, and a
signed-in dashboard page on the live stack. In CI a missing browser fails the test.

With AGENTMILL_UI_SCREENSHOTS set to a folder, tests save their screenshots there
(`make ui-screenshots` writes docs/ui/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.web.threaded import serve_in_thread
from tests.api.support import RecordingQueue


def chromium_path() -> str | None:
    """Chromium's executable: AGENTMILL_CHROMIUM, else `chromium` on PATH."""
    return os.environ.get("AGENTMILL_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for a module's tests. Not for the session: Playwright's sync API
    runs an event loop in this thread while it is open, and later tests call asyncio.run."""
    path = chromium_path()
    if path is None:
        message = "no Chromium: `make browser` installs Debian's (or set AGENTMILL_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def quiet_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """The real API over HTTP with no worker behind it: runs and batch items stay queued."""
    with serve_in_thread(create_app(settings, engine, run_queue=RecordingQueue())) as url:
        yield url


LOOPBACK = ("http://127.0.0.1:", "http://localhost:", "data:")


class Problems:
    """What the page reported that a working dashboard never does: script errors, console
    errors (but the browser's note of an error status, which tests cause on purpose), and
    requests that leave the machine (a CDN: the dashboard and /docs must work offline)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def watch(self, page: Page) -> None:
        """Record the page's problems from now on."""
        page.on("pageerror", lambda error: self.found.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.found.append(f"console: {message.text}")
                if message.type == "error" and "Failed to load resource" not in message.text
                else None
            ),
        )
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith(LOOPBACK)
                else self.found.append(f"left the machine: {request.url}")
            ),
        )


@pytest.fixture
def problems() -> Problems:
    """The page's problems; a test asserts there are none."""
    return Problems()


@pytest.fixture
def page(browser: Browser, problems: Problems) -> Iterator[Page]:
    """A fresh browser context (its own sessionStorage) at a laptop's screen size."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    problems.watch(opened)
    yield opened
    context.close()


def sign_in(page: Page, base_url: str, key: str) -> None:
    """Open the dashboard and sign in with `key`."""
    page.goto(f"{base_url}/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Agents").wait_for()


def open_section(page: Page, name: str) -> None:
    """Click `name` in the dashboard's navigation (the agents table has links of the same names)."""
    nav = page.get_by_role("navigation", name="Sections")
    nav.get_by_role("link", name=name, exact=True).click()


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save the page as `name`.png where AGENTMILL_UI_SCREENSHOTS says (else nowhere)."""
    folder = os.environ.get("AGENTMILL_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)
