"""Budgets: holds before a call, settlements after, per run, agent and tenant-day."""

from podium.stores.budgets.backends import open_budgets
from podium.stores.budgets.sql import Claim, Reservation
from podium.stores.budgets.store import Budgets

__all__ = ["Budgets", "Claim", "Reservation", "open_budgets"]
