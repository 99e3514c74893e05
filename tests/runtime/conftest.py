"""Fixtures of the store tests: a fresh store database on every back end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podium.runtime.db import Database, open_database
from podium.runtime.urls import parse_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """podium's tables alone (no checkpointer) on memory, SQLite and PostgreSQL."""
    database = open_database(parse_url(db_url))
    yield database
    database.close()
