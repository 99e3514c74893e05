"""A store transaction that loses its connection runs again as a whole, and takes effect once.

Two faults on a real PostgreSQL: the session is terminated in the middle of a transaction
(`pg_terminate_backend` while a statement waits), and the answer to COMMIT is lost (a
proxy between podium and the server drops the connection around the COMMIT message).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from podium.errors import AlreadyDecided
from podium.gates.request import Decision, GateRequest
from podium.storage.database import PostgresDatabase, open_database
from podium.storage.urls import parse_url
from podium.stores.approvals import Approvals
from podium.stores.audit.events import AuditEvent
from podium.stores.audit.log import AuditLog
from podium.stores.budgets.store import Budgets, Claim
from podium.stores.ledger import UsageEntry, UsageLedger

#: The simple-query message psycopg sends to commit (type, length 11, text, NUL).
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


@pytest.fixture
def db(postgres_url) -> Iterator[PostgresDatabase]:
    database = open_database(parse_url(postgres_url), retry_for=20)
    assert isinstance(database, PostgresDatabase)
    yield database
    database.close()


def _gate(approvals: Approvals, tenant: str) -> str:
    gate_id = f"g-{uuid.uuid4().hex[:8]}"
    approvals.open(
        GateRequest(
            gate_id=gate_id,
            kind="tool",
            tenant_id=tenant,
            workflow="w",
            thread_id="t",
            tool="publish",
            args={"x": 1},
            requested_at=time.time(),
        )
    )
    return gate_id


def _waiting_backend(url: str, statement: str, *, not_pid: int | None = None) -> int:
    """The pid of the session of this database whose `statement` waits for a lock."""
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s AND pid <> %s",
                (statement + "%", not_pid or 0),
            ).fetchall()
            if rows:
                return int(rows[0][0])
            time.sleep(0.02)
    raise AssertionError(f"no session waits in {statement!r}")


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


class _InThread:
    """Runs `fn` in a thread; `result()` returns its value or raises its exception."""

    def __init__(self, fn: Any) -> None:
        self._out: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Any) -> None:
        try:
            self._out.append(("ok", fn()))
        except BaseException as exc:
            self._out.append(("error", exc))

    def result(self) -> Any:
        self._thread.join(30)
        assert self._out, "still running"
        kind, value = self._out[0]
        if kind == "error":
            raise value
        return value


def _cut_in_the_middle(url: str, row_lock: str, params: tuple, statement: str, fn: Any) -> Any:
    """Run `fn` while another session holds the row lock `row_lock` takes, so `fn`'s
    transaction waits at `statement` after its first statements ran; terminate that
    session there, let the transaction's second run wait at the same place, then let go."""
    with psycopg.connect(url) as blocker:
        blocker.execute(row_lock, params)  # holds the row lock until rollback
        call = _InThread(fn)
        first = _waiting_backend(url, statement)
        _terminate(url, first)
        _waiting_backend(url, statement, not_pid=first)  # the whole transaction ran again
        blocker.rollback()
    return call.result()


def test_a_decision_cut_off_mid_transaction_is_made_once(db, postgres_url, tenant):
    approvals = Approvals(db)
    gate_id = _gate(approvals, tenant)
    decision = Decision(decision="approve", comment="ship it")
    record = _cut_in_the_middle(
        postgres_url,
        "SELECT 1 FROM podium_approvals WHERE gate_id = %s FOR UPDATE",
        (gate_id,),
        "UPDATE podium_approvals",
        lambda: approvals.claim(gate_id, tenant, decision, "ana"),
    )
    assert (record.status, record.decided_by, record.decision["comment"]) == (
        "decided",
        "ana",
        "ship it",
    )
    with pytest.raises(AlreadyDecided):  # decided once: a second decision is refused
        approvals.claim(gate_id, tenant, Decision(decision="reject"), "bob")


def test_a_budget_settle_cut_off_mid_transaction_counts_once(db, postgres_url, tenant):
    budgets = Budgets(db)
    claim = Claim("run:t", "tokens", limit=1000.0, amount=100.0)
    budgets.settle(budgets.reserve(tenant, [claim], ref="first"), {"tokens": 100})
    late = budgets.reserve(tenant, [claim], ref="late")
    budgets.release(late)  # its hold is gone (as if purged): settling takes the long path
    _cut_in_the_middle(
        postgres_url,
        "SELECT 1 FROM podium_budget_spent WHERE tenant_id = %s FOR UPDATE",
        (tenant,),
        "INSERT INTO podium_budget_spent",
        lambda: budgets.settle(late, {"tokens": 40}),
    )
    assert budgets.spent(tenant, "run:t", "tokens") == 140.0
    rows = db.query(
        "SELECT state, amount FROM podium_budget_ledger WHERE reservation_id = ?",
        (late.reservation_id,),
    )
    assert rows == [{"state": "spent", "amount": 40.0}]


# -- a COMMIT whose answer is lost ---------------------------------------------------------


class CommitCutter:
    """A TCP proxy to PostgreSQL that, once armed, cuts the connection at the next message
    holding `marker` (COMMIT, or a statement that commits on its own): after the server got
    it ("after": it commits, its answer is lost) or before ("before": it never commits)."""

    def __init__(self, port: int) -> None:
        self._upstream = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.mode: str | None = None
        self.marker = COMMIT
        self.cuts = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode: str, marker: bytes = COMMIT) -> None:
        self.marker, self.mode = marker, mode

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            pair = (client, server)
            threading.Thread(target=self._pump, args=(client, server, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: tuple) -> None:
        from_client = src is pair[0]
        try:
            while data := src.recv(65536):
                cut = None
                if from_client and self.mode is not None and self.marker in data:
                    with self._lock:
                        cut, self.mode = self.mode, None
                if cut is not None:
                    self.cuts += 1
                    src.shutdown(socket.SHUT_RDWR)  # the client hears nothing more
                    if cut == "after":
                        dst.sendall(data)  # the server gets the COMMIT and commits
                        time.sleep(0.5)
                    dst.shutdown(socket.SHUT_RDWR)
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()


@pytest.fixture
def cutter(postgres_url) -> Iterator[tuple[CommitCutter, PostgresDatabase]]:
    url = psycopg.conninfo.conninfo_to_dict(postgres_url)
    proxy = CommitCutter(int(url.get("port") or 5432))
    name = url["dbname"]
    proxied = f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}?sslmode=disable"
    database = open_database(parse_url(proxied), retry_for=20)
    assert isinstance(database, PostgresDatabase)
    yield proxy, database
    database.close()
    proxy.close()


@pytest.mark.parametrize("mode", ["after", "before"])
def test_a_lost_commit_answer_is_looked_up_not_guessed(cutter, tenant, mode):
    """Whether the COMMIT arrived or not, the decision is made once and the caller gets it:
    a committed transaction is not run again (that would say "already decided"), an
    uncommitted one is."""
    proxy, db = cutter
    approvals = Approvals(db)
    gate_id = _gate(approvals, tenant)
    proxy.arm(mode)
    record = approvals.claim(gate_id, tenant, Decision(decision="approve"), "ana")
    assert proxy.cuts == 1
    assert (record.status, record.decided_by) == ("decided", "ana")
    rows = db.query("SELECT status, decided_by FROM podium_approvals WHERE gate_id = ?", (gate_id,))
    assert rows == [{"status": "decided", "decided_by": "ana"}]


@pytest.mark.parametrize("mode", ["after", "before"])
def test_usage_rows_whose_insert_answer_is_lost_are_recorded_once(cutter, tenant, mode):
    proxy, db = cutter
    ledger = UsageLedger(db)
    entries = [UsageEntry(tenant, "w", "t", f"t{i}", "a", "m", 10, 5, 0, 0.01) for i in range(3)]
    proxy.arm(mode, b"INSERT INTO podium_usage")
    ledger.record(entries)  # one statement: retried, and a row already there is kept
    assert proxy.cuts == 1
    rows = db.query("SELECT task_id FROM podium_usage WHERE tenant_id = ?", (tenant,))
    assert sorted(r["task_id"] for r in rows) == ["t0", "t1", "t2"]


@pytest.mark.parametrize("mode", ["after", "before"])
def test_an_audit_batch_whose_insert_answer_is_lost_is_chained_once(cutter, tenant, mode):
    proxy, db = cutter
    audit = AuditLog(db)

    def event(n: int) -> AuditEvent:
        return AuditEvent(
            kind="transition", actor="system:podium", payload={"n": n}, tenant_id=tenant
        )

    audit.append([event(1)])  # the writer now knows the head: the next batch is one statement
    proxy.arm(mode, b"WITH chain_lock")
    audit.append([event(2), event(3)])
    assert proxy.cuts == 1
    assert [e.payload["n"] for e in audit.events(tenant)] == [1, 2, 3]
    (report,) = audit.verify(tenant)
    assert report.ok and report.count == 3
