"""Writer locks on every back end: one holder per tenant's thread, given back, and dropped
when the holding process dies (SQLite and PostgreSQL, where other processes can look)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from podium import ThreadBusy, WriterLockLost
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.writers import FileWriters, HeldThread, lock_key, open_writers
from tests.graphs.test_crash_resume import ROOT

#: The most seconds a killed holder may keep a thread (measured: see the report of
#: `test_a_killed_holder_frees_the_thread_at_once`).
KILLED_HOLDER_LIMIT = 5.0

HOLDER = """
import sys, time
from podium.storage.database import open_database
from podium.storage.urls import parse_url
from podium.stores.writers import open_writers
writers = open_writers(open_database(parse_url(sys.argv[1])))
held = writers.acquire(sys.argv[2], sys.argv[3])
print("held", flush=True)
time.sleep(60)
"""


def test_a_thread_has_one_writer_until_it_is_released(db, tenant):
    writers = open_writers(db)
    held = writers.acquire(tenant, "th")
    assert isinstance(held, HeldThread) and held.held
    with pytest.raises(ThreadBusy) as refused:
        writers.acquire(tenant, "th")
    assert refused.value.thread_id == "th" and refused.value.tenant_id == tenant
    assert f"thread 'th' of tenant {tenant!r} is already running" in str(refused.value)
    held.release()
    held.release()  # twice is harmless
    assert not held.held
    writers.acquire(tenant, "th").release()


def test_threads_and_tenants_are_locked_apart(db, tenant):
    writers = open_writers(db)
    held = [writers.acquire(tenant, "a"), writers.acquire(tenant, "b")]
    held.append(writers.acquire(f"{tenant}-other", "a"))
    with pytest.raises(ThreadBusy):
        writers.acquire(tenant, "b")
    for h in held:
        h.release()


def test_a_lock_can_be_released_from_another_thread(db, tenant):
    # Async runs take and give back their lock in worker threads (Services.run_sync).
    writers = open_writers(db)
    held = writers.acquire(tenant, "th")
    worker = threading.Thread(target=held.release)
    worker.start()
    worker.join()
    writers.acquire(tenant, "th").release()


def test_another_connection_to_the_database_is_refused_too(durable_url, tenant):
    one, two = (open_database(parse_url(durable_url)) for _ in range(2))
    try:
        held = open_writers(one).acquire(tenant, "th")
        with pytest.raises(ThreadBusy) as refused:
            open_writers(two).acquire(tenant, "th")
        assert refused.value.holder  # names who holds it: a pid, a session
        held.release()
        open_writers(two).acquire(tenant, "th").release()
    finally:
        one.close()
        two.close()


def test_a_killed_holder_frees_the_thread_at_once(durable_url, tenant):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, durable_url, tenant, "th"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    db = open_database(parse_url(durable_url))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        writers = open_writers(db)
        with pytest.raises(ThreadBusy) as refused:
            writers.acquire(tenant, "th")
        assert f"pid {holder.pid}" in refused.value.holder or "PostgreSQL session" in (
            refused.value.holder
        )
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=10)
        killed = time.monotonic()
        while True:
            try:
                writers.acquire(tenant, "th").release()
                break
            except ThreadBusy:
                assert time.monotonic() - killed < KILLED_HOLDER_LIMIT
                time.sleep(0.005)
        print(f"free {time.monotonic() - killed:.3f}s after the kill")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
        db.close()


def test_sqlite_lock_files_are_removed_on_release_and_name_their_holder(tmp_path, tenant):
    writers = FileWriters(tmp_path / "podium.db-writers")
    held = writers.acquire(tenant, "th")
    (lock,) = (tmp_path / "podium.db-writers").iterdir()
    assert lock.read_text().startswith("pid ")
    held.release()
    assert list((tmp_path / "podium.db-writers").iterdir()) == []


def test_sqlite_locks_live_next_to_the_database(tmp_path, tenant):
    db = open_database(parse_url(f"sqlite:///{tmp_path / 'data' / 'p.db'}"))
    try:
        writers = open_writers(db)
        assert isinstance(writers, FileWriters)
        assert writers.folder == tmp_path / "data" / "p.db-writers"
    finally:
        db.close()


def test_postgres_lock_is_a_session_advisory_lock_freed_on_release(postgres_url, tenant):
    import psycopg

    db = open_database(parse_url(postgres_url))
    key = lock_key(tenant, "th")
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::bigint = %s AND objid::bigint = %s"
    )
    parts = ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
    try:
        held = open_writers(db).acquire(tenant, "th")
        with psycopg.connect(postgres_url, autocommit=True) as look:
            assert look.execute(query, parts).fetchone() == (1,)
            held.release()
            assert look.execute(query, parts).fetchone() == (0,)
    finally:
        db.close()


def _writer_sessions(look, url: str) -> int:
    name = url.rsplit("/", 1)[1]
    row = look.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = 'podium-writers' AND datname = %s",
        (name,),
    ).fetchone()
    return int(row[0])


def test_postgres_locks_of_many_runs_share_one_session(fresh_postgres_url, tenant):
    import psycopg

    db = open_database(parse_url(fresh_postgres_url))
    writers = open_writers(db)
    try:
        held = [writers.acquire(tenant, f"th{i}") for i in range(20)]
        with psycopg.connect(fresh_postgres_url, autocommit=True) as look:
            assert _writer_sessions(look, fresh_postgres_url) == 1
            for h in held:
                h.release()
            writers.close()
            deadline = time.monotonic() + 5.0  # the server ends the closed session
            while _writer_sessions(look, fresh_postgres_url) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _writer_sessions(look, fresh_postgres_url) == 0
    finally:
        db.close()


def test_postgres_locks_are_taken_again_when_their_session_is_lost(fresh_postgres_url, tenant):
    import psycopg

    one, two = (open_database(parse_url(fresh_postgres_url)) for _ in range(2))
    mine, other = open_writers(one), open_writers(two)
    try:
        running = mine.acquire(tenant, "a")
        with psycopg.connect(fresh_postgres_url, autocommit=True) as look:
            look.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'podium-writers' AND datname = %s",
                (fresh_postgres_url.rsplit("/", 1)[1],),
            )
        # The next use opens a new session and takes the running run's lock again.
        mine.acquire(tenant, "b").release()
        with pytest.raises(ThreadBusy):
            other.acquire(tenant, "a")
        running.release()
        other.acquire(tenant, "a").release()
    finally:
        mine.close()
        other.close()
        one.close()
        two.close()


def _end_lock_sessions(url: str) -> None:
    """End the writer-lock sessions on `url`'s database, as a restart or an operator's
    pg_terminate_backend would, and wait until the server has closed them."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as look:
        look.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'podium-writers' AND datname = %s",
            (name,),
        )
        deadline = time.monotonic() + 5.0
        while _writer_sessions(look, url) and time.monotonic() < deadline:
            time.sleep(0.01)


def test_a_run_whose_lock_session_ended_takes_its_lock_again(fresh_postgres_url, tenant):
    one, two = (open_database(parse_url(fresh_postgres_url)) for _ in range(2))
    mine, other = open_writers(one), open_writers(two)
    try:
        running = mine.acquire(tenant, "a")
        assert not running.suspect()  # a live, idle session: nothing to look at
        _end_lock_sessions(fresh_postgres_url)
        deadline = time.monotonic() + 5.0  # the server's goodbye reaches the socket
        while not running.suspect() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.suspect()
        running.check()  # no one took it: taken again on a new session
        assert not running.suspect()
        with pytest.raises(ThreadBusy):
            other.acquire(tenant, "a")
        running.release()
        other.acquire(tenant, "a").release()
    finally:
        for closing in (mine, other, one, two):
            closing.close()


def test_a_run_whose_lock_another_run_took_is_told_at_its_next_check(fresh_postgres_url, tenant):
    one, two = (open_database(parse_url(fresh_postgres_url)) for _ in range(2))
    mine, other = open_writers(one), open_writers(two)
    try:
        running = mine.acquire(tenant, "a")
        _end_lock_sessions(fresh_postgres_url)
        taker = other.acquire(tenant, "a")  # the thread looks free to everyone else
        with pytest.raises(WriterLockLost, match="lost its writer lock") as lost:
            running.check()
        assert "PostgreSQL session pid" in lost.value.holder
        with pytest.raises(WriterLockLost):
            running.check()  # and stays lost
        running.release()  # gives back nothing another session holds
        with pytest.raises(ThreadBusy):
            mine.acquire(tenant, "a")
        taker.release()
        mine.acquire(tenant, "a").release()
    finally:
        for closing in (mine, other, one, two):
            closing.close()
