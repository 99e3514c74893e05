"""LangGraph's own checkpointer conformance suite against every saver podium hands out.

`open_async_runtime` gives `InMemorySaver` (memory://), `InlineAsyncSqliteSaver` (SQLite:
its async methods run `SqliteSaver`'s synchronous ones inline, so this also covers the
saver `open_runtime` gives for SQLite) and `RetryingAsyncPostgresSaver` (PostgreSQL:
LangGraph's `AsyncPostgresSaver`, retried through lost connections). Every capability
suite gets a fresh saver on a fresh database, as the suite expects.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate

from podium.runtime import open_async_runtime


def _fresh_postgres(base_url: str):
    """Create a database next to `base_url`'s for one capability suite; (url, drop)."""
    root, _, _ = base_url.rpartition("/")
    name = f"podium_conf_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{root}/{name}", drop


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def saver_url(request, tmp_path):
    """A factory of fresh database URLs of one back end."""
    if request.param == "memory":
        yield lambda: ("memory://", lambda: None)
    elif request.param == "sqlite":
        yield lambda: (f"sqlite:///{tmp_path / uuid.uuid4().hex}.db", lambda: None)
    else:
        base = request.getfixturevalue("postgres_url")
        yield lambda: _fresh_postgres(base)


async def test_every_saver_passes_langgraph_conformance(saver_url):
    names: list[str] = []

    @checkpointer_test(name=f"podium-{uuid.uuid4().hex[:6]}")
    async def podium_saver():
        url, drop = saver_url()
        try:
            async with open_async_runtime(url) as rt:
                names.append(type(rt.checkpointer).__name__)
                yield rt.checkpointer
        finally:
            drop()

    report = await validate(podium_saver)
    failures = {cap: result.failures for cap, result in report.results.items() if result.failures}
    assert report.passed_all_base(), failures
    assert names and set(names) <= {
        "InMemorySaver",
        "InlineAsyncSqliteSaver",
        "RetryingAsyncPostgresSaver",
    }
