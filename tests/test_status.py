"""podium.status: the numbers of `GET /podium/metrics` and `podium status`."""

from __future__ import annotations

import podium
from podium.status import (
    METRICS,
    TenantStatus,
    build_status,
    metrics_text,
    parse_metrics,
    status_rows,
    store_counts,
)


def test_status_survives_the_prometheus_text_round_trip() -> None:
    status = build_status(
        {"acme": {"gates_waiting": 2, "spent_usd": 0.125}, "*": {"breakers_open": 1}},
        {"acme": {"runs_queued": 3, "runs_in_flight": 5}, "globex": {"runs_in_flight": 1}},
    )
    assert [t.tenant_id for t in status.tenants] == ["*", "acme", "globex"]
    text = metrics_text(status).decode()
    for name in METRICS:
        assert f"# TYPE {name} gauge" in text
    assert 'podium_runs_queued{tenant="acme"} 3.0' in text
    assert parse_metrics(text + "other_metric 1\n") == status
    assert status.tenant("acme") == TenantStatus("acme", 3, 5, 2, 0, 0, 0.125, 0)
    assert status.tenant("nobody") == TenantStatus("nobody")


def test_status_rows_mark_runs_unknown_without_a_server() -> None:
    status = build_status({"acme": {"gates_waiting": 2, "spent_usd": 0.125}})
    headers, rows = status_rows(status, runs=False)
    assert headers[:3] == ["tenant", "runs_queued", "runs_in_flight"]
    assert rows == [["acme", "-", "-", "2", "0", "0", "0.1250", "0"]]
    assert status_rows(status)[1][0][1:3] == ["0", "0"]


def test_store_counts_of_an_empty_database_on_every_back_end(db_url, request) -> None:
    if db_url.startswith("postgresql"):  # the session's database holds other tests' rows
        db_url = request.getfixturevalue("fresh_postgres_url")
    with podium.open_runtime(db_url) as rt:
        assert store_counts(rt.db) == {}
