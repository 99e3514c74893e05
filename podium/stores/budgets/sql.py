"""The budget tables, what a reservation is, when one is refused, and the SQL of `Budgets`.

`Budgets` runs these statements through a worker thread (sync) or from the event loop
(`areserve`, `asettle`, `arelease` on PostgreSQL under an async runtime, where holds and
settlements go in batches: `holds_pg_sql`, `sums_pg_sql`, `settle_many_pg_sql`,
`release_many_pg_sql`); building them here keeps the paths the same statements. The
batch statements pass each column as one array (`unnest`): their text is the same
whatever the batch's size, so the driver parses it once and sends a few parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.errors import BudgetExceeded

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

#: Slack for sums of float amounts (USD), so 0.1 + 0.2 fits a 0.3 limit.
EPSILON = 1e-9


def purge_sql(tenant_id: str, cutoff: float) -> Statement:
    return (
        "DELETE FROM podium_budget_ledger WHERE tenant_id = ? AND state = 'reserved' "
        "AND created_at < ?",
        [tenant_id, cutoff],
    )


def insert_sql(
    reservation: Reservation, state: str, amounts: Sequence[float], now: float
) -> Statement:
    return _insert_rows(_ledger_rows(reservation, state, amounts, now))


def holds_pg_sql(reservations: Sequence[Reservation]) -> Statement:
    """Every claim of `reservations` held, in one PostgreSQL INSERT.

    It commits without waiting for its WAL flush: a hold is visible to every other
    transaction as soon as it commits either way (what "hold first, then look" needs),
    and one lost to a crash of the database server itself only frees room the call it
    was for would have held; its settlement then records the spend as a hold that is
    gone (`Budgets.settle`). A durable commit costs a disk flush per model call.
    """
    rows = [
        row
        for r in reservations
        for row in _ledger_rows(r, "reserved", [c.amount for c in r.claims], r.created_at)
    ]
    return (
        "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)) "
        "INSERT INTO podium_budget_ledger SELECT held.* FROM quick, unnest("
        + ", ".join(f"CAST(? AS {kind}[])" for kind in _LEDGER_TYPES)
        + ") AS held ON CONFLICT (reservation_id, scope_key, unit) DO NOTHING",
        _columns(rows, len(_LEDGER_TYPES)),
    )


#: podium_budget_ledger's column types, in order (`holds_pg_sql` sends one array each).
_LEDGER_TYPES = ("TEXT",) * 4 + ("DOUBLE PRECISION", "TEXT", "TEXT") + ("DOUBLE PRECISION",) * 2


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (numbers as floats: an array holds one type)."""
    return [
        [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in column]
        for column in (zip(*rows, strict=True) if rows else [()] * width)
    ]


def _ledger_rows(
    reservation: Reservation, state: str, amounts: Sequence[float], now: float
) -> list[tuple[Any, ...]]:
    settled_at = now if state == "spent" else None
    return [
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


def _insert_rows(rows: Sequence[tuple[Any, ...]]) -> Statement:
    # A row already there is the same insert run again after its answer was lost.
    marks = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    sql = (
        f"INSERT INTO podium_budget_ledger VALUES {marks} "
        "ON CONFLICT (reservation_id, scope_key, unit) DO NOTHING"
    )
    return sql, [v for row in rows for v in row]


def delete_sql(reservation: Reservation, extra: str) -> Statement:
    return (
        f"DELETE FROM podium_budget_ledger WHERE reservation_id = ? AND tenant_id = ?{extra}",
        [reservation.reservation_id, reservation.tenant_id],
    )


def release_many_pg_sql(reservations: Sequence[Reservation]) -> Statement:
    """`delete_sql` of several live holds in one PostgreSQL statement."""
    return (
        "DELETE FROM podium_budget_ledger WHERE state = 'reserved' "
        "AND (reservation_id, tenant_id) IN "
        "(SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[])))",
        [[r.reservation_id for r in reservations], [r.tenant_id for r in reservations]],
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


def sums_pg_sql(tenant_id: str, claims: Sequence[Claim], cutoff: float) -> Statement:
    """`sums_sql` for PostgreSQL, with the levels as arrays (one text for every batch)."""
    keys = sorted({c.scope_key for c in claims})
    units = sorted({c.unit for c in claims})
    return (
        "SELECT scope_key, unit, SUM(spent) AS spent, SUM(held) AS held FROM ("
        "SELECT scope_key, unit, amount AS spent, 0 AS held FROM podium_budget_spent "
        "WHERE tenant_id = ? AND scope_key = ANY(CAST(? AS TEXT[])) "
        "UNION ALL "
        "SELECT scope_key, unit, 0 AS spent, amount AS held FROM podium_budget_ledger "
        "WHERE tenant_id = ? AND scope_key = ANY(CAST(? AS TEXT[])) "
        "AND unit = ANY(CAST(? AS TEXT[])) "
        "AND state = 'reserved' AND created_at >= ?) AS levels GROUP BY scope_key, unit",
        [tenant_id, keys, tenant_id, keys, units, cutoff],
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


def settle_many_pg_sql(
    settlements: Sequence[tuple[Reservation, Mapping[str, float]]], now: float
) -> Statement:
    """Turn several live holds into spend and add it to the totals, in one PostgreSQL
    statement; it returns the ids of the reservations it settled (a hold already gone is
    missing)."""
    values = [
        (r.reservation_id, r.tenant_id, unit, float(actual.get(unit, 0.0)))
        for r, actual in settlements
        for unit in sorted({c.unit for c in r.claims})
    ]
    return (
        "WITH spend (reservation_id, tenant_id, unit, amount) AS (SELECT * FROM unnest("
        "CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), "
        "CAST(? AS DOUBLE PRECISION[]))), "
        "settled AS (UPDATE podium_budget_ledger AS l SET state = 'spent', "
        "amount = spend.amount, settled_at = ? FROM spend "
        "WHERE l.reservation_id = spend.reservation_id AND l.tenant_id = spend.tenant_id "
        "AND l.unit = spend.unit AND l.state = 'reserved' "
        "RETURNING l.reservation_id, l.tenant_id, l.scope_key, l.unit, l.amount), "
        "totals AS (INSERT INTO podium_budget_spent (tenant_id, scope_key, unit, amount) "
        "SELECT tenant_id, scope_key, unit, SUM(amount) FROM settled "
        "GROUP BY tenant_id, scope_key, unit ORDER BY tenant_id, scope_key, unit "
        "ON CONFLICT (tenant_id, scope_key, unit) "
        "DO UPDATE SET amount = podium_budget_spent.amount + excluded.amount) "
        "SELECT DISTINCT reservation_id FROM settled",
        [*_columns(values, 4), now],
    )


def settle_pg_ctes(
    reservation: Reservation, actual: Mapping[str, float], now: float, name: str = "settled"
) -> Statement:
    """`settle_update_sql` feeding the totals, as two common table expressions for a
    caller's `WITH` (`name` holds the rows turned: none when the hold is gone)."""
    update, params = settle_update_sql(reservation, actual, now)
    return (
        f"{name} AS ({update}), {name}_totals AS (INSERT INTO podium_budget_spent "
        "(tenant_id, scope_key, unit, amount) "
        f"SELECT tenant_id, scope_key, unit, amount FROM {name} ORDER BY scope_key, unit "
        "ON CONFLICT (tenant_id, scope_key, unit) "
        "DO UPDATE SET amount = podium_budget_spent.amount + excluded.amount)",
        params,
    )


def settle_pg_sql(reservation: Reservation, actual: Mapping[str, float], now: float) -> Statement:
    """`settle_pg_ctes` as one PostgreSQL statement; a row per level turned."""
    ctes, params = settle_pg_ctes(reservation, actual, now)
    return f"WITH {ctes} SELECT scope_key FROM settled", params


def refusal_of(
    tenant_id: str, claims: Sequence[Claim], sums: Mapping[tuple[str, str], tuple[float, float]]
) -> BudgetExceeded | None:
    """The refusal of the first claim without room, counting the hold just made."""
    for claim in claims:
        spent, held = sums.get((claim.scope_key, claim.unit), (0.0, claim.amount))
        if spent + held > claim.limit + EPSILON:
            return exceeded(tenant_id, claim, spent, held - claim.amount)
    return None


def exceeded(tenant_id: str, claim: Claim, spent: float, held: float) -> BudgetExceeded:
    return BudgetExceeded(
        scope=claim.scope_key,
        unit=claim.unit,
        limit=claim.limit,
        spent=spent,
        requested=claim.amount,
        tenant_id=tenant_id,
        reserved=held,
    )
