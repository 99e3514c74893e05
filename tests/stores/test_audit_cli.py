"""`podium audit verify|export|head|show`, through a parser built with `register`."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from podium.commands.audit import register
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.audit.log import AuditError, AuditEvent, AuditLog, content_hash

TABLE = "podium_audit_events"


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_AUDIT_KEY", raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    parser = argparse.ArgumentParser(prog="podium")
    register(parser.add_subparsers(dest="command"))

    def invoke(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args(["audit", *argv])
        code = args.handler(args)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def url(durable_url: str) -> str:
    return durable_url


@pytest.fixture
def sql(url: str) -> Iterator[Callable[..., None]]:
    db = open_database(parse_url(url))
    yield lambda statement, *params: db.execute(statement, params)
    db.close()


def write(url: str, tenant: str, count: int, *, key: bytes | None = None) -> None:
    db = open_database(parse_url(url))
    events = [
        AuditEvent("plan", "agent:planner", {"summary": "planned 3 tasks"}, tenant, thread_id="t1"),
        AuditEvent(
            "model_call",
            "agent:writer",
            {"input": content_hash("prompt"), "tokens": 42},
            tenant,
            thread_id="t1",
            task_id="t3",
        ),
    ]
    AuditLog(db, key=key, clock=lambda: 1_718_000_000.5).append(
        [events[i % 2] for i in range(count)]
    )
    db.close()


def test_verify_prints_ok_per_tenant_and_exits_zero(run, url, tenant, tmp_path):
    write(url, tenant, 4)
    code, out, _ = run("verify", "--db", url, "--tenant", tenant)
    assert code == 0 and out.count("OK") == 1
    assert out.startswith(f"OK    tenant {tenant}: 4 events, head 4 ")
    # Every tenant, on a database of its own (PostgreSQL's is shared with tampering tests).
    own = f"sqlite:///{tmp_path / 'own.db'}"
    write(own, "acme", 4)
    write(own, "globex", 2)
    code, out, _ = run("verify", "--db", own)
    assert code == 0 and [line.split(",")[0] for line in out.splitlines()] == [
        "OK    tenant acme: 4 events",
        "OK    tenant globex: 2 events",
    ]


def test_verify_names_the_first_bad_row_and_exits_one(run, url, sql, tenant):
    write(url, tenant, 6)
    sql(f"UPDATE {TABLE} SET payload = ? WHERE tenant_id = ? AND seq = 3", '{"x":1}', tenant)
    code, out, _ = run("verify", "--db", url, "--tenant", tenant)
    assert code == 1
    assert out.startswith(f"FAIL  tenant {tenant}: seq 3 edited: row 3's content does not match")
    assert "(2 events verified before it)" in out


def test_verify_against_a_stored_head_file_finds_a_truncated_tail(run, url, sql, tenant, tmp_path):
    write(url, tenant, 5)
    code, out, _ = run("head", "--db", url, "--tenant", tenant, "--json")
    head = json.loads(out)
    assert code == 0 and head["tenant_id"] == tenant and head["seq"] == 5
    stored = tmp_path / "head.json"
    stored.write_text(out)
    sql(f"DELETE FROM {TABLE} WHERE tenant_id = ? AND seq = 5", tenant)
    assert run("verify", "--db", url, "--tenant", tenant)[0] == 0
    code, out, _ = run("verify", "--db", url, "--head", str(stored))
    assert code == 1 and f"tenant {tenant}: seq 5 truncated" in out
    inline = f"{head['seq']}:{head['hash']}"
    assert run("verify", "--db", url, "--tenant", tenant, "--head", inline)[0] == 1
    code, out, _ = run("verify", "--db", url, "--tenant", tenant, "--head", head["hash"])
    assert code == 1 and "head_missing" in out


def test_plain_head_output_is_a_head_verify_accepts(run, url, tenant, tmp_path):
    write(url, tenant, 3)
    code, out, _ = run("head", "--db", url, "--tenant", tenant)
    [line] = out.splitlines()
    assert code == 0 and line.split()[:2] == [tenant, "3"]
    (tmp_path / "heads.txt").write_text(out)
    write(url, tenant, 2)
    heads = str(tmp_path / "heads.txt")
    code, out, _ = run("verify", "--db", url, "--tenant", tenant, "--head", heads)
    assert code == 0 and f"tenant {tenant}: 5 events" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nonsense", "cannot read a head from 'nonsense' (not a file either)"),
        ('[{"tenant_id": "t", "seq": "5", "hash": "x"}]', "cannot read a head from"),
        ("3:" + "a" * 64, "names no tenant; say which with --tenant"),
        ('{"tenant_id": "elsewhere", "seq": 1, "hash": "x"}', "no head for tenant"),
    ],
)
def test_unreadable_heads_are_refused(run, value, message, tmp_path):
    tenant = ["--tenant", "mine"] if "elsewhere" in value else []
    with pytest.raises(AuditError, match=re.escape(message)):
        run("verify", "--db", f"sqlite:///{tmp_path / 'a.db'}", "--head", value, *tenant)


def test_the_key_comes_from_podium_audit_key(run, url, tenant, monkeypatch):
    write(url, tenant, 3, key=b"s3cret")
    code, out, _ = run("verify", "--db", url, "--tenant", tenant)
    assert code == 1 and "seq 1 key_required" in out and "PODIUM_AUDIT_KEY" in out
    monkeypatch.setenv("PODIUM_AUDIT_KEY", "s3cret")
    assert run("verify", "--db", url, "--tenant", tenant)[0] == 0
    write(url, tenant, 1)  # a writer that forgot the key
    code, out, _ = run("verify", "--db", url, "--tenant", tenant)
    assert code == 1 and "seq 4 unkeyed: row 4 was written without the key" in out


def test_export_writes_one_checkable_json_row_per_line(run, url, tenant, tmp_path):
    write(url, tenant, 3)
    write(url, f"{tenant}-b", 1)
    target = tmp_path / "audit.jsonl"
    code, _, err = run("export", "--db", url, "--tenant", tenant, "--output", str(target))
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert code == 0 and "exported 3 audit events" in err
    assert [r["seq"] for r in rows] == [1, 2, 3] and {r["tenant_id"] for r in rows} == {tenant}
    for row in rows:
        expected = row.pop("hash")
        message = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(message.encode()).hexdigest() == expected
    code, out, _ = run("export", "--db", url, "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) >= 4


def test_show_prints_a_readable_timeline(run, url, tenant):
    write(url, tenant, 2)
    code, out, _ = run("show", "t1", "--db", url, "--tenant", tenant)
    header, _, first, second = out.splitlines()
    assert code == 0 and header.split() == [
        "time",
        "(UTC)",
        "seq",
        "actor",
        "kind",
        "task",
        "summary",
    ]
    assert first.startswith("2024-06-10 06:13:20.500  1") and "agent:planner" in first
    assert first.endswith("plan        -     planned 3 tasks")
    assert "model_call  t3    input=sha256:" in second and "tokens=42" in second


def test_empty_database_and_bare_group(run, tmp_path):
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    code, out, _ = run("verify", "--db", db)
    assert code == 0 and out.startswith("no audit events in sqlite:///")
    assert run("head", "--db", db, "--json")[1].strip() == "[]"
    code, _, err = run()
    assert code == 2 and "verify" in err and "export" in err


def test_through_the_podium_command(tmp_path, capsys):
    from podium import cli

    db = f"sqlite:///{tmp_path / 'p.db'}"
    write(db, "acme", 2)
    assert cli.main(["audit", "verify", "--db", db]) == 0
    assert cli.main(["audit", "verify", "--db", db, "--head", "bogus"]) == 2
    assert "podium: error: cannot read a head from 'bogus'" in capsys.readouterr().err
    # An unknown thread, or another tenant's, is an error (exit 2), as for `podium show`.
    for thread, tenant in (("nope", "acme"), ("t1", "someone-else")):
        assert cli.main(["audit", "show", thread, "--db", db, "--tenant", tenant]) == 2
        err = capsys.readouterr().err
        assert f"podium: error: no thread {thread!r} for tenant {tenant!r}" in err
        assert cli.main(["show", thread, "--db", db, "--tenant", tenant]) == 2
        assert (
            f"podium: error: no thread {thread!r} for tenant {tenant!r}" in capsys.readouterr().err
        )


def test_in_a_subprocess_with_the_key_in_the_environment(tmp_path):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    write(db, "acme", 3, key=b"from-env")
    script = "import sys; from podium import cli; sys.exit(cli.main(sys.argv[1:]))"

    def verify(env: dict[str, str]) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
        return subprocess.run(
            [sys.executable, "-c", script, "audit", "verify", "--db", db],
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    keyed = verify({"PODIUM_AUDIT_KEY": "from-env"})
    assert keyed.returncode == 0 and "OK    tenant acme: 3 events" in keyed.stdout
    unkeyed = verify({})
    assert unkeyed.returncode == 1 and "FAIL  tenant acme: seq 1 key_required" in unkeyed.stdout
