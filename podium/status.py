"""The signals an operator scales on: per tenant, runs queued and in flight, gates waiting,
dead letters, open circuit breakers and money spent.

Runs are the LangGraph server's to count (`podium.server.metrics`); everything else comes
from podium's own tables (`store_counts`). One `Status` feeds the server's Prometheus text
(`GET /podium/metrics`, built with `prometheus-client`) and `podium status`, which reads
that text back (`parse_metrics`), so both show the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podium.storage.database import Database

#: Metric name -> (field of TenantStatus, help text). The order is the table's.
METRICS: dict[str, tuple[str, str]] = {
    "podium_runs_queued": ("runs_queued", "Runs accepted and waiting for a worker."),
    "podium_runs_in_flight": ("runs_in_flight", "Runs a worker is executing."),
    "podium_gates_waiting": ("gates_waiting", "Human gates waiting for a decision."),
    "podium_dead_letters": ("dead_letters", "Dead letters waiting for replay or discard."),
    "podium_breakers_open": ("breakers_open", "Circuit breakers open (calls refused)."),
    "podium_spent_usd": ("spent_usd", "Model cost recorded in the usage ledger, USD."),
    "podium_spent_tokens": ("spent_tokens", "Model tokens recorded in the usage ledger."),
}


@dataclass(frozen=True, slots=True)
class TenantStatus:
    """One tenant's numbers (breakers shared by every tenant are under tenant `*`)."""

    tenant_id: str
    runs_queued: float = 0
    runs_in_flight: float = 0
    gates_waiting: float = 0
    dead_letters: float = 0
    breakers_open: float = 0
    spent_usd: float = 0.0
    spent_tokens: float = 0


@dataclass(frozen=True, slots=True)
class Status:
    """Every tenant's numbers, sorted by tenant."""

    tenants: tuple[TenantStatus, ...] = field(default_factory=tuple)

    def tenant(self, tenant_id: str) -> TenantStatus:
        """One tenant's numbers (all zero for a tenant without any)."""
        return next((t for t in self.tenants if t.tenant_id == tenant_id), TenantStatus(tenant_id))


def store_counts(db: Database) -> dict[str, dict[str, float]]:
    """Tenant -> field -> value, from podium's tables (runs are the server's to add)."""
    out: dict[str, dict[str, float]] = {}

    def add(rows: Iterable[Mapping[str, Any]], name: str, column: str = "n") -> None:
        for row in rows:
            out.setdefault(str(row["tenant_id"]), {})[name] = float(row[column] or 0)

    add(
        db.query(
            "SELECT tenant_id, COUNT(*) AS n FROM podium_approvals "
            "WHERE status = 'pending' GROUP BY tenant_id"
        ),
        "gates_waiting",
    )
    add(
        db.query(
            "SELECT tenant_id, COUNT(*) AS n FROM podium_dead_letters "
            "WHERE status IN ('pending', 'replaying') GROUP BY tenant_id"
        ),
        "dead_letters",
    )
    add(
        db.query(
            "SELECT tenant_id, COUNT(*) AS n FROM podium_breakers "
            "WHERE status = 'open' GROUP BY tenant_id"
        ),
        "breakers_open",
    )
    spent = db.query(
        "SELECT tenant_id, SUM(cost_usd) AS usd, SUM(input_tokens + output_tokens) AS tokens "
        "FROM podium_usage GROUP BY tenant_id"
    )
    add(spent, "spent_usd", "usd")
    add(spent, "spent_tokens", "tokens")
    return out


def build_status(*parts: Mapping[str, Mapping[str, float]]) -> Status:
    """Merge tenant -> field -> value mappings into one `Status`."""
    merged: dict[str, dict[str, float]] = {}
    for part in parts:
        for tenant, values in part.items():
            merged.setdefault(tenant, {}).update(values)
    return Status(tuple(TenantStatus(t, **merged[t]) for t in sorted(merged)))


def registry(status: Status) -> Any:
    """A `prometheus_client.CollectorRegistry` holding `status` (one gauge per metric)."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry(auto_describe=True)
    for name, (attr, text) in METRICS.items():
        gauge = Gauge(name, text, ["tenant"], registry=reg)
        for tenant in status.tenants:
            gauge.labels(tenant=tenant.tenant_id).set(getattr(tenant, attr))
    return reg


def metrics_text(status: Status) -> bytes:
    """`status` in the Prometheus text format."""
    from prometheus_client import generate_latest

    return generate_latest(registry(status))


def parse_metrics(text: str) -> Status:
    """The `Status` in a `GET /podium/metrics` answer (other metrics are ignored)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in METRICS:
            continue
        attr = METRICS[family.name][0]
        for sample in family.samples:
            values.setdefault(sample.labels["tenant"], {})[attr] = sample.value
    return build_status(values)


def status_rows(status: Status, *, runs: bool = True) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the status table (`podium status`).

    Args:
        status: The numbers.
        runs: False when no server counted runs: their cells show "-", not 0.
    """
    headers = ["tenant", *(name.removeprefix("podium_") for name in METRICS)]
    rows = [
        [
            t.tenant_id,
            *(
                "-" if not runs and attr.startswith("runs_") else _number(getattr(t, attr))
                for attr, _ in METRICS.values()
            ),
        ]
        for t in status.tenants
    ]
    return headers, rows


def _number(value: float) -> str:
    return f"{value:.4f}" if value != int(value) else str(int(value))
