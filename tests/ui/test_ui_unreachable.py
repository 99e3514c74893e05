"""app.py with PostgreSQL unreachable: one clear message within seconds, no traceback.

Unreachable from the start (nothing listens on the port), and gone while the page is open
(the throwaway cluster stopped after a run stopped at its gate); once it is back, the page
works again and the run continues from its gate.
"""

from __future__ import annotations

import socket
import time

import pytest

from podium.graphs.research_brief import DEMO_GOAL
from tests.ui.test_ui_app import APP, APP_ENV, AppTest, button, chat, gate_keys, ok, send, texts


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


@pytest.fixture
def on_database(monkeypatch):
    """Point the page at a database URL (and a 1 s retry window) before it first runs."""

    def point(url: str) -> None:
        for name in APP_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PODIUM_DATABASE_URL", url)
        monkeypatch.setenv("PODIUM_DB_RETRY_FOR", "1")

    yield point
    import streamlit as st

    st.cache_resource.clear()  # the next test opens its own database


def _page_text(at: AppTest) -> str:
    kinds = (at.error, at.warning, at.info, at.caption, at.markdown, at.success)
    return "\n".join(text for kind in kinds for text in texts(kind))


def _timed_run(at: AppTest) -> float:
    started = time.monotonic()
    at.run()
    return time.monotonic() - started


def test_postgresql_unreachable_from_the_start_is_one_message(on_database):
    port = _closed_port()
    on_database(f"postgresql://podium:s3cret@127.0.0.1:{port}/podium")
    at = AppTest.from_file(str(APP), default_timeout=60)
    took = _timed_run(at)
    assert not at.exception, [e.value for e in at.exception]
    (error,) = texts(at.error)
    assert error.startswith(
        f"podium cannot start: cannot connect to postgresql://podium:***@127.0.0.1:{port}/podium"
    )
    assert "Check that PostgreSQL is running" in error
    assert "s3cret" not in _page_text(at) and "Traceback" not in _page_text(at)
    assert took < 20


def test_postgresql_gone_while_the_page_is_open_then_back(on_database, own_cluster):
    """The page says once what is wrong (within seconds), and once the database is back it
    shows the thread again, whose gate decides and finishes the run."""
    url = own_cluster.url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    masked = url.replace(":s3cret@", ":***@")
    on_database(url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    ok(send(ok(_ran(at)), DEMO_GOAL))
    assert len(gate_keys(at)) == 1  # the run waits at the editor's gate
    own_cluster.stop()
    try:
        took = _timed_run(at)
        assert not at.exception, [e.value for e in at.exception]
        (error,) = texts(at.error)
        assert error.startswith(f"the database {masked} was unreachable for 1s ("), error
        assert "Connection refused" in error and "check that the server is running" in error
        assert "s3cret" not in _page_text(at)
        assert took < 20
        again = _timed_run(at)  # known down now: the next drawing does not wait the window
        assert len(at.error) == 1 and again < 10
    finally:
        own_cluster.start()
    started = time.monotonic()
    while _ran(at).error:  # the pool reconnects at the next try after its short backoff
        assert time.monotonic() - started < 10, texts(at.error)
    ok(at)
    assert len(gate_keys(at)) == 1
    ok(button(at, "Approve").click().run())
    assert "Publishing: published reports/" in chat(at)[-1][1]


def _ran(at: AppTest) -> AppTest:
    at.run()
    return at
