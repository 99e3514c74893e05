"""The usage and cost ledger on every back end, and the `podium costs` command over it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from podium.commands import costs
from podium.errors import ConfigurationError
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.ledger import CostRow, UsageEntry, UsageLedger

DAY = 86_400.0
NOW = 1_800_000_000.0


def entry(tenant: str, agent: str, **fields) -> UsageEntry:
    values = {
        "workflow": "research_brief",
        "thread_id": "t1",
        "task_id": "t1-1",
        "model": "gpt-small",
        "input_tokens": 100,
        "output_tokens": 10,
        "cached_tokens": 0,
        "cost_usd": 0.01,
        "at": NOW,
    }
    values.update(fields)
    return UsageEntry(tenant_id=tenant, agent=agent, **values)


def sample(tenant: str) -> list[UsageEntry]:
    return [
        entry(tenant, "researcher", input_tokens=1_000, output_tokens=200, cost_usd=0.5),
        entry(tenant, "researcher", input_tokens=500, output_tokens=100, cached_tokens=300),
        entry(tenant, "writer", model="gpt-big", input_tokens=300, output_tokens=700, cost_usd=2),
        entry(tenant, "analyst", thread_id="t2", workflow="other", task_id=None, at=NOW - DAY),
    ]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (
            "agent",
            [("writer", 1, 1_000, 2.0), ("researcher", 2, 1_800, 0.51), ("analyst", 1, 110, 0.01)],
        ),
        ("model", [("gpt-big", 1, 1_000, 2.0), ("gpt-small", 3, 1_910, 0.52)]),
        ("workflow", [("research_brief", 3, 2_800, 2.51), ("other", 1, 110, 0.01)]),
        ("thread", [("t1", 3, 2_800, 2.51), ("t2", 1, 110, 0.01)]),
    ],
)
def test_totals_group_and_sort_by_cost(db, tenant, by, expected):
    ledger = UsageLedger(db)
    ledger.record(sample(tenant))
    rows = ledger.totals(tenant, by=by)
    assert [(r.key, r.calls, r.total_tokens, round(r.cost_usd, 6)) for r in rows] == expected


def test_a_row_sums_every_column(db, tenant):
    ledger = UsageLedger(db)
    ledger.record(sample(tenant))
    [row] = ledger.totals(tenant, by="tenant")
    assert row == CostRow(
        key=tenant,
        calls=4,
        input_tokens=1_900,
        output_tokens=1_010,
        cached_tokens=300,
        total_tokens=2_910,
        cost_usd=pytest.approx(2.52),
    )


def test_equal_costs_sort_by_tokens(db, tenant):
    ledger = UsageLedger(db)
    ledger.record([entry(tenant, "small"), entry(tenant, "big", input_tokens=5_000)])
    assert [r.key for r in ledger.totals(tenant, by="agent")] == ["big", "small"]


def test_since_and_thread_filters(db, tenant):
    ledger = UsageLedger(db)
    ledger.record(sample(tenant))
    recent = ledger.totals(tenant, by="agent", since=NOW - 60)
    assert {r.key for r in recent} == {"writer", "researcher"}
    assert [r.key for r in ledger.totals(tenant, by="agent", thread_id="t2")] == ["analyst"]
    panel = ledger.for_thread("t1", tenant)
    assert [(r.key, r.calls) for r in panel] == [("writer", 1), ("researcher", 2)]


def test_per_task_totals_of_one_thread_and_round(db, tenant):
    ledger = UsageLedger(db)
    ledger.record(
        [
            entry(tenant, "supervisor", task_id=None),
            entry(tenant, "researcher", task_id="t1", at=NOW - 100),  # an earlier round
            entry(tenant, "researcher", task_id="t1"),
            entry(tenant, "researcher", task_id="t1", output_tokens=20),
            entry(tenant, "writer", task_id="t2"),
            entry(tenant, "writer", task_id="t2", thread_id="other"),
            entry(f"{tenant}-other", "writer", task_id="t2"),
        ]
    )
    every_round = ledger.for_tasks("t1", tenant)
    assert {k: (r.calls, r.total_tokens) for k, r in every_round.items()} == {
        "t1": (3, 340),
        "t2": (1, 110),
    }
    this_round = ledger.for_tasks("t1", tenant, since=NOW - 1)
    assert {k: (r.calls, r.total_tokens) for k, r in this_round.items()} == {
        "t1": (2, 230),
        "t2": (1, 110),
    }


def test_tenants_see_only_their_own_usage(db, tenant):
    ledger = UsageLedger(db)
    other = f"{tenant}-other"
    ledger.record([*sample(tenant), entry(other, "writer", cost_usd=9.0)])
    assert "writer" not in {r.key for r in ledger.totals(tenant, by="agent", thread_id="t2")}
    assert [(r.key, r.calls) for r in ledger.totals(other, by="agent")] == [("writer", 1)]
    assert ledger.for_thread("t1", other)[0].cost_usd == pytest.approx(9.0)
    assert ledger.for_thread("t2", other) == []
    # No tenant: the operator's report over every tenant.
    everyone = {r.key: r.calls for r in ledger.totals(None, by="tenant", since=NOW - 60)}
    assert everyone[tenant] == 3 and everyone[other] == 1


def test_calls_of_retried_steps_keep_their_attempts(db, tenant):
    ledger = UsageLedger(db)
    ledger.record(
        [
            entry(tenant, "researcher", cost_usd=0.5),
            entry(tenant, "researcher", step_attempt=2, run_attempt=2),
            entry(tenant, "supervisor", task_id=None, run_attempt=2),
        ]
    )
    rows = ledger.totals(tenant, by="attempt")
    assert [(r.key, r.calls, round(r.cost_usd, 6)) for r in rows] == [
        ("1", 2, 0.51),
        ("2", 1, 0.01),
    ]
    stored = db.query(
        "SELECT agent, step_attempt, run_attempt FROM podium_usage WHERE tenant_id = ? "
        "ORDER BY agent, step_attempt",
        (tenant,),
    )
    assert [(r["agent"], r["step_attempt"], r["run_attempt"]) for r in stored] == [
        ("researcher", 1, 1),
        ("researcher", 2, 2),
        ("supervisor", 1, 2),
    ]


#: `podium_usage` as podium made it before calls carried their attempts.
OLD_USAGE_TABLE = """CREATE TABLE podium_usage (
    entry_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, workflow TEXT NOT NULL,
    thread_id TEXT NOT NULL, task_id TEXT, agent TEXT NOT NULL, model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL, at DOUBLE PRECISION NOT NULL
)"""


def test_a_table_made_before_attempts_gains_them(db_url, tenant, request):
    if db_url.startswith("postgresql"):  # the session's database has the new table already
        db_url = request.getfixturevalue("fresh_postgres_url")
    database = open_database(parse_url(db_url))
    database.execute(OLD_USAGE_TABLE)
    database.execute(
        "INSERT INTO podium_usage VALUES "
        "('old', ?, 'w', 't1', NULL, 'writer', 'm', 1, 2, 0, 0.5, ?)",
        (tenant, NOW),
    )
    ledger = UsageLedger(database)
    ledger.record([entry(tenant, "writer", step_attempt=2)])
    UsageLedger(database)  # a second process opening it changes nothing
    assert [(r.key, r.calls) for r in ledger.totals(tenant, by="attempt")] == [("1", 1), ("2", 1)]
    database.close()


def test_at_defaults_to_the_clock(db, tenant):
    ledger = UsageLedger(db, clock=lambda: NOW + 5)
    ledger.record([entry(tenant, "writer", at=None)])
    assert ledger.totals(tenant, by="agent", since=NOW + 5)[0].calls == 1
    assert ledger.totals(tenant, by="agent", since=NOW + 6) == []


def test_a_batch_is_recorded_all_or_nothing(db, tenant):
    ledger = UsageLedger(db)
    broken = entry(tenant, "writer", workflow=None)  # the database refuses the NULL
    with pytest.raises(Exception):  # noqa: B017 - sqlite3 and psycopg raise different types
        ledger.record([entry(tenant, "researcher"), broken])
    assert ledger.totals(tenant, by="agent") == []


def test_a_batch_larger_than_one_insert_is_recorded_all_or_nothing(db, tenant):
    ledger = UsageLedger(db)
    many = [entry(tenant, "researcher") for _ in range(2_500)]  # two INSERT statements
    with pytest.raises(Exception):  # noqa: B017 - sqlite3 and psycopg raise different types
        ledger.record([*many, entry(tenant, "writer", workflow=None)])
    assert ledger.totals(tenant, by="agent") == []
    ledger.record(many)
    [row] = ledger.totals(tenant, by="agent")
    assert (row.key, row.calls, row.input_tokens) == ("researcher", 2_500, 250_000)


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"input_tokens": -1}, "input_tokens=-1"), ({"cost_usd": -0.5}, "cost_usd=-0.5")],
)
def test_negative_usage_is_refused(fields, message, tenant):
    database = open_database(parse_url("memory://"))
    with pytest.raises(ConfigurationError, match=message):
        UsageLedger(database).record([entry(tenant, "writer", **fields)])
    database.close()


def test_an_unknown_grouping_is_refused(tenant):
    database = open_database(parse_url("memory://"))
    with pytest.raises(ConfigurationError, match="cannot group costs by 'day'"):
        UsageLedger(database).totals(tenant, by="day")  # type: ignore[arg-type]
    database.close()


# -- podium costs -------------------------------------------------------------------------


def run_costs(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="podium")
    costs.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["costs", *argv])
    return args.handler(args)


def parse_table(text: str) -> dict[str, list[str]]:
    lines = text.strip().splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines[2:]}


@pytest.mark.parametrize("by", ["agent", "model", "workflow", "thread"])
def test_costs_table_sums_match_the_ledger(durable_url, tenant, capsys, by):
    database = open_database(parse_url(durable_url))
    ledger = UsageLedger(database)
    ledger.record(sample(tenant))
    expected = ledger.totals(tenant, by=by)
    database.close()
    assert run_costs("--db", durable_url, "--tenant", tenant, "--by", by) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == [by, "calls", "input", "output", "cached", "tokens", "cost_usd"]
    table = parse_table(out)
    assert list(table) == [r.key for r in expected] + ["total"]
    for row in expected:
        assert table[row.key] == [
            str(row.calls),
            str(row.input_tokens),
            str(row.output_tokens),
            str(row.cached_tokens),
            str(row.total_tokens),
            f"{row.cost_usd:.4f}",
        ]
    assert table["total"] == ["4", "1900", "1010", "300", "2910", "2.5200"]


def test_costs_since_and_all_tenants(tmp_path, tenant, capsys):
    url = f"sqlite:///{tmp_path / 'podium.db'}"
    database = open_database(parse_url(url))
    now = datetime.now(UTC).timestamp()
    UsageLedger(database).record(
        [
            entry(tenant, "writer", at=now, cost_usd=1.0),
            entry(tenant, "writer", at=now - 3 * DAY, cost_usd=5.0),
            entry(f"{tenant}-b", "writer", at=now, cost_usd=2.0),
        ]
    )
    database.close()
    assert run_costs("--db", url, "--tenant", tenant, "--since", "24h") == 0
    assert parse_table(capsys.readouterr().out)["total"][-1] == "1.0000"
    assert run_costs("--db", url, "--all-tenants", "--by", "tenant", "--since", "2d") == 0
    table = parse_table(capsys.readouterr().out)
    assert (table[tenant][-1], table[f"{tenant}-b"][-1], table["total"][-1]) == (
        "1.0000",
        "2.0000",
        "3.0000",
    )


def test_costs_without_usage_says_so(tmp_path, tenant, capsys):
    assert run_costs("--db", f"sqlite:///{tmp_path / 'p.db'}", "--tenant", tenant) == 0
    assert f"no usage recorded for tenant {tenant!r}" in capsys.readouterr().out


def test_costs_refuses_a_tenant_with_all_tenants(tmp_path):
    with pytest.raises(ConfigurationError, match="contradict"):
        run_costs("--db", f"sqlite:///{tmp_path / 'p.db'}", "--tenant", "a", "--all-tenants")


def test_a_bad_since_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        run_costs("--db", "memory://", "--since", "yesterday")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "bad --since value 'yesterday'" in err and "24h" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - DAY),
        ("7d", NOW - 7 * DAY),
        ("30m", NOW - 1_800),
        ("90s", NOW - 90),
        ("2w", NOW - 14 * DAY),
        ("1.5h", NOW - 5_400),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC).timestamp()),
        ("2026-11-01T12:30", datetime(2026, 11, 1, 12, 30, tzinfo=UTC).timestamp()),
        ("2026-11-01T00:00:00+02:00", datetime(2026, 10, 31, 22, tzinfo=UTC).timestamp()),
    ],
)
def test_since_timestamp(text, expected):
    assert costs.since_timestamp(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "24", "h", "-1d", "3y", "2026-13-01", "last week"])
def test_since_timestamp_rejects_bad_values(text):
    with pytest.raises(ConfigurationError, match="use a duration such as"):
        costs.since_timestamp(text, NOW)
