"""The budget tables, what a reservation is, and the SQL both paths of `Budgets` run.

`Budgets` runs these statements through a worker thread (sync) or from the event loop
(`areserve`, `asettle`, `arelease` on PostgreSQL under an async runtime); building them
here keeps the two paths the same statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS podium_budget_ledger (
        reservation_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        scope_key TEXT NOT NULL,
        unit TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL,
        ref TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        settled_at DOUBLE PRECISION,
        PRIMARY KEY (reservation_id, scope_key, unit)
    )""",
    "CREATE INDEX IF NOT EXISTS podium_budget_ledger_scope "
    "ON podium_budget_ledger (tenant_id, scope_key, unit, state)",
    # Settling finds its rows by reservation; without this SQLite's planner picked the
    # scope index on tenant_id alone and scanned every row of the tenant.
    "CREATE INDEX IF NOT EXISTS podium_budget_ledger_reservation "
    "ON podium_budget_ledger (reservation_id, tenant_id)",
    """CREATE TABLE IF NOT EXISTS podium_budget_spent (
        tenant_id TEXT NOT NULL,
        scope_key TEXT NOT NULL,
        unit TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant_id, scope_key, unit)
    )""",
    # A database from before the totals table: total what its ledger settled, once.
    """INSERT INTO podium_budget_spent (tenant_id, scope_key, unit, amount)
        SELECT tenant_id, scope_key, unit, SUM(amount) FROM podium_budget_ledger
        WHERE state = 'spent' AND NOT EXISTS (SELECT 1 FROM podium_budget_spent)
        GROUP BY tenant_id, scope_key, unit""",
]


@dataclass(frozen=True, slots=True)
class Claim:
    """Room asked of one budget level: `amount` of `unit` under `limit` in `scope_key`."""

    scope_key: str
    unit: str
    limit: float
    amount: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """Claims held together until `settle` or `release`; `ref` says what they were for."""

    reservation_id: str
    tenant_id: str
    ref: str
    claims: tuple[Claim, ...]
    created_at: float


Statement = tuple[str, list[Any]]


def purge_sql(tenant_id: str, cutoff: float) -> Statement:
    return (
        "DELETE FROM podium_budget_ledger WHERE tenant_id = ? AND state = 'reserved' "
        "AND created_at < ?",
        [tenant_id, cutoff],
    )


def insert_sql(
    reservation: Reservation, state: str, amounts: Sequence[float], now: float
) -> Statement:
    settled_at = now if state == "spent" else None
    rows = [
        (
            reservation.reservation_id,
            reservation.tenant_id,
            claim.scope_key,
            claim.unit,
            amount,
            state,
            reservation.ref,
            reservation.created_at,
            settled_at,
        )
        for claim, amount in zip(reservation.claims, amounts, strict=True)
    ]
    marks = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    return f"INSERT INTO podium_budget_ledger VALUES {marks}", [v for row in rows for v in row]


def delete_sql(reservation: Reservation, extra: str) -> Statement:
    return (
        f"DELETE FROM podium_budget_ledger WHERE reservation_id = ? AND tenant_id = ?{extra}",
        [reservation.reservation_id, reservation.tenant_id],
    )


def sums_sql(tenant_id: str, claims: Sequence[Claim], cutoff: float) -> Statement:
    """(spent, held) of every level the claims name, in one query: the settled totals
    plus the live holds (a few rows, whatever the day's spend)."""
    keys = sorted({c.scope_key for c in claims})
    units = sorted({c.unit for c in claims})
    marks = ", ".join("?" for _ in keys)
    unit_marks = ", ".join("?" for _ in units)
    # Every column of the scope index is constrained, so only live holds are read.
    return (
        "SELECT scope_key, unit, SUM(spent) AS spent, SUM(held) AS held FROM ("
        "SELECT scope_key, unit, amount AS spent, 0 AS held FROM podium_budget_spent "
        f"WHERE tenant_id = ? AND scope_key IN ({marks}) "
        "UNION ALL "
        "SELECT scope_key, unit, 0 AS spent, amount AS held FROM podium_budget_ledger "
        f"WHERE tenant_id = ? AND scope_key IN ({marks}) AND unit IN ({unit_marks}) "
        "AND state = 'reserved' AND created_at >= ?) AS levels GROUP BY scope_key, unit",
        [tenant_id, *keys, tenant_id, *keys, *units, cutoff],
    )


def sums_from(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    return {(r["scope_key"], r["unit"]): (float(r["spent"]), float(r["held"])) for r in rows}


def settle_update_sql(
    reservation: Reservation, actual: Mapping[str, float], now: float
) -> Statement:
    """Turn a live hold into spend, returning the rows turned (none: the hold is gone)."""
    units = sorted({c.unit for c in reservation.claims})
    amount = "CASE unit " + " ".join("WHEN ? THEN ?" for _ in units) + " END"
    return (
        f"UPDATE podium_budget_ledger SET state = 'spent', amount = {amount}, "
        "settled_at = ? WHERE reservation_id = ? AND tenant_id = ? AND state = 'reserved' "
        "RETURNING tenant_id, scope_key, unit, amount",
        [
            *(v for u in units for v in (u, float(actual.get(u, 0.0)))),
            now,
            reservation.reservation_id,
            reservation.tenant_id,
        ],
    )


def settle_pg_sql(reservation: Reservation, actual: Mapping[str, float], now: float) -> Statement:
    """`settle_update_sql` feeding the totals, as one PostgreSQL statement."""
    update, params = settle_update_sql(reservation, actual, now)
    return (
        f"WITH settled AS ({update}) INSERT INTO podium_budget_spent "
        "(tenant_id, scope_key, unit, amount) "
        "SELECT tenant_id, scope_key, unit, amount FROM settled ORDER BY scope_key, unit "
        "ON CONFLICT (tenant_id, scope_key, unit) "
        "DO UPDATE SET amount = podium_budget_spent.amount + excluded.amount "
        "RETURNING scope_key",
        params,
    )
