"""Fixtures of the store tests: a fresh store database on every back end, and budgets
driven from the event loop on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from podium.storage.database import Database, open_database
from podium.storage.urls import parse_url
from podium.stores.budgets.store import Budgets


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """podium's tables alone (no checkpointer) on memory, SQLite and PostgreSQL."""
    database = open_database(parse_url(db_url))
    yield database
    database.close()


@pytest.fixture
async def budgets(postgres_url) -> AsyncIterator[Budgets]:
    """Budgets whose async methods run on the loop, over an async pool as the async
    runtime on PostgreSQL sets them up."""
    db = open_database(parse_url(postgres_url))
    pool = AsyncConnectionPool(
        postgres_url, max_size=8, kwargs={"autocommit": True, "row_factory": dict_row}, open=False
    )
    await pool.open()
    db.use_async_pool(pool)
    store = Budgets(db)
    assert store.runs_on_loop
    yield store
    await pool.close()
    db.close()
