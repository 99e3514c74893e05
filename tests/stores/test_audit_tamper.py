"""Tampering with the audit table by plain SQL, and what verify says about it.

Each test builds a 10-event chain, changes the table the way someone with write access
(but, in HMAC mode, without the key) could, and checks the first bad sequence number and
the kind of problem verify reports, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from podium.storage.database import Database, open_database
from podium.storage.urls import parse_url
from podium.stores.audit.log import AuditEvent, AuditLog, Head

TABLE = "podium_audit_events"
GENESIS = "0" * 64


@pytest.fixture
def db(durable_url: str) -> Iterator[Database]:
    database = open_database(parse_url(durable_url))
    yield database
    database.close()


def fill(log: AuditLog, tenant: str, count: int = 10) -> None:
    log.append(
        [
            AuditEvent("tool_call", "agent:researcher", {"n": i}, tenant, thread_id="t1", at=i)
            for i in range(count)
        ]
    )


# -- what an attacker with SQL access does ----------------------------------------------


def row(db: Database, tenant: str, seq: int) -> dict:
    [found] = db.query(f"SELECT * FROM {TABLE} WHERE tenant_id = ? AND seq = ?", (tenant, seq))
    return found


def forge(fields: dict, key: bytes | None = None) -> str:
    """The hash the attacker computes, with their own code: canonical JSON, then SHA-256."""
    content = {k: v for k, v in fields.items() if k != "hash"}
    content["payload"] = json.loads(content["payload"])
    message = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if key is None:
        return hashlib.sha256(message.encode()).hexdigest()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def insert(db: Database, fields: dict) -> None:
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    db.execute(f"INSERT INTO {TABLE} ({names}) VALUES ({marks})", list(fields.values()))


def renumber(db: Database, tenant: str, first: int, delta: int) -> None:
    """Shift seq of rows >= first by delta, in two steps so the primary key never clashes."""
    db.execute(
        f"UPDATE {TABLE} SET seq = seq + 1000000 WHERE tenant_id = ? AND seq >= ?", (tenant, first)
    )
    db.execute(
        f"UPDATE {TABLE} SET seq = seq - 1000000 + ? WHERE tenant_id = ? AND seq >= 1000000",
        (delta, tenant),
    )


def set_column(column: str, value, seq: int = 4) -> Callable[[Database, str], None]:
    def tamper(db: Database, tenant: str) -> None:
        db.execute(
            f"UPDATE {TABLE} SET {column} = ? WHERE tenant_id = ? AND seq = ?", (value, tenant, seq)
        )

    return tamper


def delete(*seqs: int) -> Callable[[Database, str], None]:
    def tamper(db: Database, tenant: str) -> None:
        for seq in seqs:
            db.execute(f"DELETE FROM {TABLE} WHERE tenant_id = ? AND seq = ?", (tenant, seq))

    return tamper


def swap(a: int, b: int) -> Callable[[Database, str], None]:
    def tamper(db: Database, tenant: str) -> None:
        for old, new in ((a, -1), (b, a), (-1, b)):
            db.execute(
                f"UPDATE {TABLE} SET seq = ? WHERE tenant_id = ? AND seq = ?", (new, tenant, old)
            )

    return tamper


def forged_after(seq: int, *, prev: str | None = None, renumbered: bool = True):
    """Insert a well-formed forged row as row `seq + 1`, linked to row `seq` (or to `prev`)."""

    def tamper(db: Database, tenant: str) -> None:
        template = row(db, tenant, 1)
        if renumbered:
            renumber(db, tenant, seq + 1, +1)
        link = prev or (GENESIS if seq == 0 else row(db, tenant, seq)["hash"])
        fake = {**template, "seq": seq + 1, "payload": '{"n":"forged"}', "prev_hash": link}
        insert(db, {**fake, "hash": forge(fake)})

    return tamper


def delete_and_renumber(db: Database, tenant: str) -> None:
    delete(4)(db, tenant)
    renumber(db, tenant, 5, -1)


CASES = [
    ("payload edited", set_column("payload", '{"n":99}'), 4, "edited"),
    ("actor edited", set_column("actor_name", "mallory"), 4, "edited"),
    ("time edited", set_column("at_us", 123), 4, "edited"),
    ("kind of the first row edited", set_column("kind", "plan", seq=1), 1, "edited"),
    ("prev hash edited", set_column("prev_hash", "ab" * 32), 4, "edited"),
    ("unknown mode", set_column("mode", "md5"), 4, "edited"),
    ("row deleted", delete(4), 4, "deleted"),
    ("first row deleted", delete(1), 1, "deleted"),
    ("two rows deleted", delete(5, 6), 5, "deleted"),
    ("row deleted and the rest renumbered", delete_and_renumber, 4, "deleted"),
    ("two rows swapped", swap(4, 5), 4, "reordered"),
    ("first two rows swapped", swap(1, 2), 1, "reordered"),
    ("forged row inserted in the middle", forged_after(4), 5, "inserted"),
    ("forged row inserted first", forged_after(0), 1, "inserted"),
    ("row appended with a foreign link", forged_after(10, prev="cd" * 32), 11, "inserted"),
    ("row with sequence 0", forged_after(-1, prev=GENESIS, renumbered=False), 0, "inserted"),
]


@pytest.mark.parametrize(
    ("tamper", "seq", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_tampering_is_found_at_the_first_bad_row(db, tenant, tamper, seq, kind):
    log = AuditLog(db)
    fill(log, tenant)
    other = f"{tenant}-bystander"
    fill(log, other, 3)
    assert log.verify(tenant).ok
    tamper(db, tenant)
    report = log.verify()
    chain = report[tenant]
    assert chain.problem is not None, chain
    assert (chain.problem.seq, chain.problem.kind) == (seq, kind), chain.problem.detail
    assert chain.count == max(seq - 1, 0) and chain.head.seq == chain.count
    assert not report.ok and report[other].ok


def test_a_truncated_tail_is_found_only_against_a_stored_head(db, tenant):
    log = AuditLog(db)
    fill(log, tenant)
    head = log.head(tenant)
    delete(9, 10)(db, tenant)
    assert log.verify(tenant).ok  # without a head, a shorter chain is still a valid chain
    chain = log.verify(tenant, head=head)[tenant]
    assert (chain.problem.seq, chain.problem.kind) == (9, "truncated")
    assert "ends at 8 but the stored head is at 10" in chain.problem.detail
    known_by_hash = Head(tenant, None, head.hash)
    assert log.verify(tenant, head=known_by_hash)[tenant].problem.kind == "head_missing"


def test_a_tenant_whose_rows_are_all_gone_is_reported_from_its_head(db, tenant):
    log = AuditLog(db)
    fill(log, tenant, 3)
    head = log.head(tenant)
    db.execute(f"DELETE FROM {TABLE} WHERE tenant_id = ?", (tenant,))
    chain = log.verify(head=[head])[tenant]
    assert (chain.problem.seq, chain.problem.kind, chain.count) == (1, "truncated", 0)


def test_an_old_head_still_verifies_as_the_chain_grows(db, tenant):
    log = AuditLog(db)
    fill(log, tenant, 4)
    head = log.head(tenant)
    fill(log, tenant, 4)
    assert log.verify(tenant, head=head).ok
    assert log.verify(tenant, head=Head(tenant, None, head.hash)).ok
    assert log.verify(tenant, head=Head(tenant, 0, GENESIS)).ok


def rewrite_from(db: Database, tenant: str, first: int, *, mode: str | None = None) -> None:
    """Edit row `first` and re-hash it and every later row with plain SHA-256."""
    prev = row(db, tenant, first - 1)["hash"] if first > 1 else GENESIS
    seqs = [r["seq"] for r in db.query(f"SELECT seq FROM {TABLE} WHERE tenant_id = ?", (tenant,))]
    for seq in sorted(s for s in seqs if s >= first):
        fields = {
            **row(db, tenant, seq),
            "prev_hash": prev,
            "mode": mode or row(db, tenant, seq)["mode"],
        }
        if seq == first:
            fields["payload"] = '{"n":"rewritten"}'
        fields["hash"] = prev = forge(fields)
        db.execute(
            f"UPDATE {TABLE} SET payload = ?, prev_hash = ?, mode = ?, hash = ? "
            "WHERE tenant_id = ? AND seq = ?",
            (fields["payload"], fields["prev_hash"], fields["mode"], fields["hash"], tenant, seq),
        )


def test_a_consistent_sha256_rewrite_is_caught_by_the_stored_head(db, tenant):
    log = AuditLog(db)
    fill(log, tenant)
    head = log.head(tenant)
    rewrite_from(db, tenant, 4)
    # Without a key anyone can re-hash a consistent chain: that is what heads and keys are for.
    assert log.verify(tenant).ok
    chain = log.verify(tenant, head=head)[tenant]
    assert (chain.problem.seq, chain.problem.kind) == (10, "rewritten")


@pytest.mark.parametrize("mode", [None, "sha256"], ids=["mode kept", "mode set to sha256"])
def test_hmac_mode_rejects_a_rewrite_made_without_the_key(db, tenant, mode):
    log = AuditLog(db, key=b"secret")
    fill(log, tenant)
    assert log.verify(tenant).ok
    rewrite_from(db, tenant, 4, mode=mode)
    chain = log.verify(tenant)[tenant]
    assert (chain.problem.seq, chain.problem.kind) == (4, "unkeyed"), chain.problem
    assert "without the key" in chain.problem.detail and chain.count == 3


def test_hmac_rows_need_the_right_key(db, tenant):
    fill(AuditLog(db, key=b"secret"), tenant, 3)
    problem = AuditLog(db).verify(tenant)[tenant].problem
    assert (problem.seq, problem.kind) == (1, "key_required")
    assert "PODIUM_AUDIT_KEY" in problem.detail
    problem = AuditLog(db, key=b"guess").verify(tenant)[tenant].problem
    assert (problem.seq, problem.kind) == (1, "edited") and "another key" in problem.detail


def test_rows_written_without_the_key_fail_a_keyed_verify(db, tenant):
    fill(AuditLog(db), tenant, 3)
    fill(AuditLog(db, key=b"secret"), tenant, 2)
    assert AuditLog(db).verify(tenant)[tenant].problem.seq == 4  # sha256 up to 3, then HMAC
    problem = AuditLog(db, key=b"secret").verify(tenant)[tenant].problem
    assert (problem.seq, problem.kind) == (1, "unkeyed")


def test_verify_refuses_a_head_of_another_tenant(db, tenant):
    log = AuditLog(db)
    with pytest.raises(Exception, match="pass the head of the tenant you verify"):
        log.verify(tenant, head=Head("someone-else", 1, GENESIS))


def test_a_duplicate_sequence_number_is_an_insertion():
    # The primary key refuses duplicates; a walk over rows that bypassed it must still say so.
    from podium.stores.audit.chain import check_chain

    db = open_database(parse_url("memory://"))
    log = AuditLog(db)
    fill(log, "t", 3)
    rows = db.query(f"SELECT * FROM {TABLE} ORDER BY seq")
    twice = [rows[0], rows[1], {**rows[1], "payload": '{"n":"copy"}'}, rows[2]]
    chain = check_chain("t", twice, key=None, seq_of_hash=lambda h: None)
    assert (chain.problem.seq, chain.problem.kind, chain.count) == (2, "inserted", 2)


WRITER = """
import sys
from podium.stores.audit.log import AuditEvent, AuditLog
from podium.storage.database import open_database
from podium.storage.urls import parse_url

url, tenant, name = sys.argv[1:4]
db = open_database(parse_url(url))
log = AuditLog(db)
print("ready", flush=True)
sys.stdin.readline()  # both writers start together
for batch in range(30):
    log.append([AuditEvent("tool_call", f"agent:{name}", {"n": batch * 10 + i}, tenant)
                for i in range(10)])
db.close()
"""


def test_two_processes_appending_on_postgres_keep_one_chain(postgres_url, tenant):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_url, tenant, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("w1", "w2")
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.close()
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    db = open_database(parse_url(postgres_url))
    log = AuditLog(db)
    chain = log.verify(tenant)[tenant]
    assert chain.ok and chain.count == 600
    stored = log.events(tenant)
    assert [e.seq for e in stored] == list(range(1, 601))
    for name in ("w1", "w2"):
        assert [e.payload["n"] for e in stored if e.actor.name == name] == list(range(300))
    db.close()
