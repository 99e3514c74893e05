"""Which budgets a database gets: in process memory for `memory://`, else its tables."""

from __future__ import annotations

from typing import Any

from podium.storage.database import Database
from podium.stores.budgets.memory import MemoryBudgets
from podium.stores.budgets.store import Budgets


def open_budgets(db: Database, **options: Any) -> Budgets:
    """The budgets of a runtime's database: in this process's memory when the database is
    in memory (`memory://`, see `podium.stores.budgets.memory`), else in its tables.

    Args:
        db: podium's database.
        **options: `clock`, `reservation_ttl`, `hold_wait` (see `Budgets`).
    """
    if db.in_memory:
        return MemoryBudgets(**options)
    return Budgets(db, **options)
