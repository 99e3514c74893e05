"""podium.status: the numbers of `GET /podium/metrics` and `podium status`."""

from __future__ import annotations

import podium
from podium.cli import main
from podium.status import (
    METRICS,
    TenantStatus,
    build_status,
    metrics_text,
    parse_metrics,
    status_rows,
    store_counts,
)
from tests.helpers import fail_a_task


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


def test_a_dead_letter_and_an_open_breaker_per_tenant_in_metrics_and_status(
    durable_url, request, tmp_path, capsys
) -> None:
    if durable_url.startswith("postgresql"):  # tenant `*` is every test's on the shared one
        durable_url = request.getfixturevalue("fresh_postgres_url")
    fail_a_task(durable_url, "acme", ["fetch_feed", "fetch_index"], tmp_path)
    fail_a_task(durable_url, "globex", ["fetch_feed"], tmp_path)

    with podium.open_runtime(durable_url) as rt:
        counted = build_status(store_counts(rt.db))
    text = metrics_text(counted).decode()
    for tenant in ("acme", "globex"):
        assert f'podium_dead_letters{{tenant="{tenant}"}} 1.0' in text
        assert f'podium_breakers_open{{tenant="{tenant}"}} 1.0' in text
    assert 'podium_breakers_open{tenant="*"} 1.0' in text
    assert 'podium_dead_letters{tenant="*"} 0.0' in text

    assert main(["status", "--db", durable_url]) == 0
    out = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1:] for line in out.out.splitlines()[2:]}
    # runs_queued, runs_in_flight, gates_waiting, dead_letters, breakers_open
    assert rows["*"][:5] == ["-", "-", "0", "0", "1"]
    assert rows["acme"][:5] == ["-", "-", "0", "1", "1"]
    assert rows["globex"][:5] == ["-", "-", "0", "1", "1"]
    assert "counted by a server only" in out.err
