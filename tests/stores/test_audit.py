"""The audit log's API on SQLite and PostgreSQL: append, read, export, buffer, isolation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Iterator

import pytest

from podium.storage.database import Database, open_database
from podium.storage.urls import parse_url
from podium.stores.audit.log import (
    KINDS,
    Actor,
    AuditBuffer,
    AuditError,
    AuditEvent,
    AuditLog,
    Head,
    content_hash,
)

NOW = 1_718_000_000.25


@pytest.fixture
def db(durable_url: str) -> Iterator[Database]:
    database = open_database(parse_url(durable_url))
    yield database
    database.close()


def event(tenant: str, n: int = 0, **fields) -> AuditEvent:
    fields.setdefault("kind", "tool_call")
    fields.setdefault("actor", "agent:researcher")
    fields.setdefault("payload", {"n": n, "tool": "search"})
    return AuditEvent(tenant_id=tenant, **fields)


def test_append_chains_events_and_verify_reports_count_and_head(db, tenant):
    log = AuditLog(db, clock=lambda: NOW)
    first = log.append([event(tenant, i) for i in range(3)])
    second = log.append([event(tenant, 3, thread_id="t1", task_id="a", at=NOW + 5)])
    stored = first + second
    assert [e.seq for e in stored] == [1, 2, 3, 4]
    assert stored[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(stored))
    assert stored[0].at == NOW and stored[3].at == NOW + 5
    assert stored[0].actor == Actor("agent", "researcher") and stored[0].mode == "sha256"
    assert log.head(tenant) == Head(tenant, 4, stored[-1].hash)
    [chain] = log.verify(tenant).chains
    assert chain.ok and chain.count == 4 and chain.head == log.head(tenant)


def test_a_batch_for_several_tenants_returns_events_in_the_order_given(db, tenant):
    log = AuditLog(db, clock=lambda: NOW)
    other = f"{tenant}-b"
    stored = log.append([event(tenant, 0), event(other, 1), event(tenant, 2), event(other, 3)])
    assert [(e.tenant_id, e.seq, e.payload["n"]) for e in stored] == [
        (tenant, 1, 0),
        (other, 1, 1),
        (tenant, 2, 2),
        (other, 2, 3),
    ]
    assert log.verify(tenant).ok and log.verify(other).ok
    assert log.append([]) == []


def test_tenants_never_see_each_others_events(db, tenant):
    log = AuditLog(db, clock=lambda: NOW)
    other = f"{tenant}-other"
    log.append([event(tenant, i, thread_id="shared") for i in range(3)])
    log.append([event(other, 9, thread_id="shared", kind="error")])
    assert [e.payload["n"] for e in log.timeline("shared", tenant)] == [0, 1, 2]
    assert [e.tenant_id for e in log.timeline("shared", other)] == [other]
    assert log.events(tenant, kind="error") == []
    assert {row["tenant_id"] for row in log.export(tenant)} == {tenant}
    assert log.head(other).seq == 1 and log.head(f"{tenant}-none") == Head(
        f"{tenant}-none", 0, "0" * 64
    )
    assert [c.tenant_id for c in log.verify(other)] == [other]
    every = {c.tenant_id for c in log.verify()}
    assert {tenant, other} <= every


def test_events_filter_by_kind_thread_time_and_limit(db, tenant):
    log = AuditLog(db)
    log.append(
        [
            event(tenant, 0, kind="plan", thread_id="t1", at=100.0),
            event(tenant, 1, kind="tool_call", thread_id="t1", at=200.0),
            event(tenant, 2, kind="tool_call", thread_id="t2", at=300.0),
            event(tenant, 3, kind="approval", actor="user:ana", thread_id="t1", at=400.0),
        ]
    )
    assert [e.payload["n"] for e in log.events(tenant, kind="tool_call")] == [1, 2]
    assert [e.payload["n"] for e in log.events(tenant, thread_id="t1", since=200.0)] == [1, 3]
    assert [e.payload["n"] for e in log.events(tenant, limit=2)] == [0, 1]
    assert log.events(tenant, since=400.000001) == []
    assert log.timeline("t1", tenant)[-1].actor == Actor("user", "ana")


def test_export_rows_can_be_checked_without_podium(db, tenant):
    key = b"audit-secret"
    log = AuditLog(db, key=key, clock=lambda: NOW)
    log.append([event(tenant, 0, payload={"prompt": content_hash("hi"), "text": "héllo ☃"})])
    log.append([event(tenant, 1, payload={"nested": {"b": [1, 2.5, None], "a": True}})])
    lines = [json.dumps(row) for row in log.export(tenant)]
    previous = "0" * 64
    for line in lines:
        row = json.loads(line)
        expected = row.pop("hash")
        message = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hmac.new(key, message.encode(), hashlib.sha256).hexdigest() == expected
        assert row["prev_hash"] == previous and row["mode"] == "hmac-sha256"
        previous = expected
    assert json.loads(lines[0])["payload"]["prompt"] == content_hash(b"hi")


@pytest.mark.parametrize("with_key", [False, True])
def test_concurrent_threads_never_fork_a_chain(durable_url, tenant, with_key):
    key = b"k" if with_key else None
    other = f"{tenant}-b"
    databases = [open_database(parse_url(durable_url)) for _ in range(4)]
    start, errors = threading.Barrier(4), []

    def write(index: int, db: Database) -> None:
        log = AuditLog(db, key=key)
        start.wait()
        try:
            for batch in range(15):
                # Mixed-tenant batches in both orders also exercise the lock ordering.
                pair = [event(tenant, index), event(other, index)]
                log.append([*pair, event(tenant, batch)] if index % 2 else [*pair[::-1]])
        except Exception as exc:  # a forked chain shows up as a duplicate key
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, d)) for i, d in enumerate(databases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = AuditLog(databases[0], key=key).verify()
    assert report[tenant].ok and report[tenant].count == 2 * 15 * 2 + 2 * 15
    assert report[other].ok and report[other].count == 4 * 15
    for db in databases:
        db.close()


def test_buffer_writes_everything_added_in_one_write_per_flush(db, tenant):
    calls: list[int] = []

    class CountingLog(AuditLog):
        def write(self, events, also=None):
            calls.append(len(events))
            super().write(events, also)

    log = CountingLog(db)
    with AuditBuffer(log, max_size=5) as buffer:
        for i in range(12):
            buffer.add(event(tenant, i))
        assert calls == [5, 5] and len(buffer) == 2
    assert calls == [5, 5, 2]
    assert [e.payload["n"] for e in log.events(tenant)] == list(range(12))
    buffer.flush()
    assert calls == [5, 5, 2]  # nothing left: no empty write


def test_buffer_never_writes_from_an_event_loop_thread(db, tenant):
    calls: list[int] = []

    class CountingLog(AuditLog):
        def write(self, events, also=None):
            calls.append(len(events))
            super().write(events, also)

    buffer = AuditBuffer(CountingLog(db), max_size=3)

    async def on_the_loop() -> None:
        for i in range(5):
            buffer.add(event(tenant, i))  # full at 3: a write here would stall the loop
        assert calls == [] and len(buffer) == 5
        await asyncio.to_thread(buffer.add, event(tenant, 5))  # off the loop: it writes

    asyncio.run(on_the_loop())
    assert calls == [6] and len(buffer) == 0


def test_buffer_is_safe_across_threads(db, tenant):
    log = AuditLog(db)
    buffer = AuditBuffer(log, max_size=30)

    def add(index: int) -> None:
        for i in range(50):
            buffer.add(event(tenant, index * 100 + i))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.flush()
    stored = log.events(tenant)
    assert sorted(e.payload["n"] for e in stored) == sorted(
        i * 100 + j for i in range(6) for j in range(50)
    )
    assert log.verify(tenant)[tenant].count == 300


def test_a_failed_flush_keeps_its_events_in_order(db, tenant):
    class FlakyLog(AuditLog):
        fail = True

        def write(self, events, also=None):
            if self.fail:
                raise RuntimeError("database away")
            super().write(events, also)

    log = FlakyLog(db)
    buffer = AuditBuffer(log, max_size=100)
    buffer.add(event(tenant, 0))
    with pytest.raises(RuntimeError, match="database away"):
        buffer.flush()
    buffer.add(event(tenant, 1))
    log.fail = False
    buffer.flush()
    assert [e.payload["n"] for e in log.events(tenant)] == [0, 1]


def test_every_documented_kind_and_namespaced_kinds_are_accepted(tenant):
    for kind in [*sorted(KINDS), "acme.export", "acme.data.purge"]:
        assert event(tenant, kind=kind).kind == kind


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "tool-call"}, "unknown audit event kind 'tool-call'; use one of approval"),
        ({"kind": "Acme.Export"}, "namespaced custom kind such as 'acme.export'"),
        ({"actor": "researcher"}, "actor 'researcher' has no type"),
        ({"actor": "robot:r2"}, "unknown actor type 'robot'; use one of agent, system, user"),
        ({"actor": "agent:"}, "actor name '' must be a non-empty string"),
        ({"tenant_id": ""}, "tenant_id '' must be a non-empty string"),
        ({"payload": ["a"]}, "must be a JSON object, got ['a']"),
        ({"payload": {"x": object()}}, "payload of a 'plan' event is not JSON"),
        ({"payload": {"x": float("nan")}}, "is not JSON"),
        ({"payload": {"x": "\ud800"}}, "is not JSON"),
        ({"thread_id": 7}, "thread_id 7 must be a string or None"),
        ({"at": "noon"}, "at 'noon' must be seconds since the epoch"),
    ],
)
def test_invalid_events_are_refused_when_made(fields, message):
    fields = {"kind": "plan", "actor": "system:podium", "payload": {}, "tenant_id": "t", **fields}
    with pytest.raises(AuditError, match=re.escape(message)):
        AuditEvent(**fields)


@pytest.mark.parametrize("key", [b"", "text-key"])
def test_a_key_must_be_non_empty_bytes(key):
    with pytest.raises(AuditError, match="must be non-empty bytes"):
        AuditLog(open_database(parse_url("memory://")), key=key)


def test_buffer_size_must_be_positive():
    log = AuditLog(open_database(parse_url("memory://")))
    with pytest.raises(AuditError, match="max_size 0 must be at least 1"):
        AuditBuffer(log, max_size=0)


def test_writers_that_each_know_a_stale_head_still_keep_one_chain(durable_url, tenant):
    # Each log links a batch to the head it last wrote (PostgreSQL: one INSERT, no lock);
    # when the other log wrote in between, that INSERT collides and the locked path
    # reads the real head.
    first, second = (open_database(parse_url(durable_url)) for _ in range(2))
    a, b = AuditLog(first), AuditLog(second)
    for n in range(6):
        a.append([event(tenant, n)])
        a.append([event(tenant, n), event(tenant, n)])  # after its own head
        b.append([event(tenant, n)])  # after a's, which b has not seen
    stored = a.events(tenant)
    assert [e.seq for e in stored] == list(range(1, 6 * 4 + 1))
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(stored))
    assert a.verify(tenant)[tenant].ok
    first.close()
    second.close()


@pytest.mark.parametrize("key", [None, b"k"])
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"z": 1, "a": [1.5, -0.0, 1e300, None, True], "m": {"é": "ü\u2028", "b": '"\\'}},
        {"tokens": {"input": 120, "output": 80}, "cost_usd": 0.0012, "big": 2**70},
    ],
)
def test_a_new_rows_hash_is_the_digest_verify_recomputes(payload, key):
    # `seal` splices the event's canonical payload into the hashed message instead of
    # parsing it again; the text must be the one `digest` builds, byte for byte, or
    # every sealed row would fail verification.
    from podium.stores.audit.chain import HMAC, SHA256, digest, seal
    from podium.stores.audit.write import _new_row

    made = AuditEvent(
        kind="model_call",
        actor="agent:researcher",
        payload=payload,
        tenant_id="t\u00e9",
        workflow="w",
        thread_id=None,
        task_id="t1",
    )
    row = seal(_new_row(made, 7, "0" * 64, 1.25), key)
    assert row["mode"] == (HMAC if key else SHA256)
    assert row["hash"] == digest(row, row["mode"], key)
