"""The console's page in a real browser: Debian's chromium driven by Playwright.

Without chromium (or the playwright package) the browser tests are skipped with the
reason, except in CI (CI=true), where .ci/run has installed chromium and a skipped
browser test fails the run instead: the page is then not tested at all."""
import os

import pytest

from .console_process import ARTIFACTS, ConsoleProcess, alive, chromium_path, launch_chromium


def _missing() -> "str | None":
    if chromium_path() is None:
        return "no chromium on this machine (apt-get install chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make installs the test extras)"
    return None


def need_browser():
    why = _missing()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test artefacts (screenshots, timings): {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    need_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


@pytest.fixture(scope="module")
def console(browser):
    """One console for a module's tests, in order, as one person would use it; stopped
    with Ctrl-C at the end, which must leave no MicroPython process behind."""
    c = ConsoleProcess()
    yield c
    boards = c.board_pids()
    code = c.stop()
    assert code == 0, c.output
    assert not [pid for pid in boards if alive(pid)], "the board outlived the console"


class Page:
    """A page of the console, with every websocket frame it sent and received."""

    def __init__(self, context, url):
        self.page = context.new_page()
        self.frames = []                   # (direction, text)
        self.page.on("websocket", self._watch)
        self.page.goto(url)

    def _watch(self, ws):
        ws.on("framesent", lambda payload: self.frames.append(("sent", _text(payload))))
        ws.on("framereceived", lambda payload: self.frames.append(("received", _text(payload))))

    def __getattr__(self, name):
        return getattr(self.page, name)


def _text(payload) -> str:
    return payload if isinstance(payload, str) else payload.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def context(browser):
    # bypass_csp: Playwright's waits evaluate script text, which the page's own policy
    # (no eval) refuses; the policy itself is tested over HTTP
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(context, console):
    p = Page(context, console.url)
    yield p
    p.page.close()
