"""app.py in a real browser: `streamlit run`, driven by Playwright on Debian's chromium.

The browser is the system's /usr/bin/chromium (apt-get install chromium), never one that
Playwright downloads. Without it the test skips with a reason, except under CI, where it
fails: CI installs chromium before the tests. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.graphs.research_brief import DEMO_GOAL

CHROMIUM = Path("/usr/bin/chromium")
APP = Path(__file__).resolve().parents[2] / "app.py"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright_api():
    """Playwright's sync API and `expect`, or a skip (a failure under CI) saying why not."""
    if not CHROMIUM.exists():
        _missing(
            f"{CHROMIUM} not found; install it with "
            "`apt-get update && apt-get install -y chromium chromium-driver`"
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright is not installed; pip install playwright (no `playwright install`)")
    return sync_playwright, expect


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit not healthy after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """`streamlit run app.py` on a free port, in a temporary directory and database."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "PODIUM_"))}
    env["PODIUM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'podium.db'}"
    log = tmp_path / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _attached(page, text: str, name: str) -> None:
    """Wait for `text` in the page's DOM; if it never comes, fail with a screenshot and the
    page's visible text saved under tests/artifacts/ (`name`.png / `name`.txt)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(text).wait_for(state="attached")
    except PlaywrightTimeout:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.txt").write_text(page.inner_text("body"))
        pytest.fail(f"{text!r} never appeared; see tests/artifacts/{name}.png and .txt")


def test_goal_approval_and_answer_in_a_real_browser(playwright_api, server, tmp_path):
    sync_playwright, expect = playwright_api
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1500})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server)
            prompt = page.locator('[data-testid="stChatInput"] textarea')
            prompt.wait_for()
            prompt.fill(DEMO_GOAL)
            prompt.press("Enter")

            card = page.get_by_text("Approval needed:", exact=True)
            card.wait_for()
            # .streamlit/config.toml, read next to app.py, hides the "Deploy" button.
            expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
            expect(page.get_by_text("Deploy", exact=True)).to_have_count(0)
            # The board is a canvas grid: its cells exist for screen readers, hidden, and
            # are drawn for the rows in view.
            page.get_by_text("Task board", exact=True).scroll_into_view_if_needed()
            _attached(page, "approval needed: publish_report", "ui-gate-missing")
            page.wait_for_timeout(500)  # let the last deltas paint
            page.screenshot(path=str(ARTIFACTS / "ui-gate.png"), full_page=True)

            page.get_by_role("button", name="Approve").click()
            answer = page.locator('[data-testid="stChatMessage"]').filter(
                has_text="Publishing: published"
            )
            answer.wait_for()
            expect(card).to_have_count(0)  # the card goes once the run has finished
            expect(page.get_by_text(DEMO_GOAL, exact=True).first).to_be_visible()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "ui-answer.png"), full_page=True)

            page.get_by_role("tab", name="Costs & tokens").click()
            page.get_by_text("cost (USD)").wait_for(state="attached")
            page.screenshot(path=str(ARTIFACTS / "ui-costs.png"), full_page=True)
            page.get_by_role("tab", name="Audit").click()
            page.get_by_text("audit chain intact").wait_for()
            page.screenshot(path=str(ARTIFACTS / "ui-audit.png"), full_page=True)
            page.get_by_role("tab", name="Graph").click()
            graph = page.locator("[role=tabpanel]:visible [data-testid=stMarkdownPre] img")
            graph.first.wait_for()
            src = graph.first.get_attribute("src") or ""
            assert src.startswith(("data:", "blob:")), f"graph drawn from {src[:60]!r}"
            page.screenshot(path=str(ARTIFACTS / "ui-graph.png"), full_page=True)
            assert "?thread=research_brief-" in page.url
        finally:
            browser.close()
    assert list((tmp_path / "reports").glob("*.md")), "the approved report was not published"
