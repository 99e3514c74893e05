"""open_runtime / open_async_runtime on every back end, and the thread index."""

from __future__ import annotations

import pytest

import podium
from podium.errors import DatabaseError, ThreadNotFound
from tests.helpers import arun_demo, run_demo


async def test_async_runtime_runs_the_demo_on_every_backend(db_url, tenant):
    async with podium.open_async_runtime(db_url) as rt:
        app = rt.compile(podium.build_research_brief())
        out = await arun_demo(app, f"{tenant}-a", tenant=tenant)
        [info] = rt.threads.list(tenant_id=tenant)
    assert out["status"] == "completed"
    assert info.status == "completed"


def test_reopening_sees_the_same_threads(durable_url, tenant):
    config = {"configurable": {"thread_id": f"{tenant}-keep"}}
    with podium.open_runtime(durable_url) as rt:
        run_demo(rt.compile(podium.build_research_brief()), f"{tenant}-keep", tenant=tenant)
    with podium.open_runtime(durable_url) as rt:
        state = rt.compile(podium.build_research_brief()).get_state(config)
        assert state.values["status"] == "completed"
        assert rt.threads.get(f"{tenant}-keep", tenant_id=tenant).workflow == "research_brief"


def test_thread_index_isolates_tenants(db_url, tenant):
    with podium.open_runtime(db_url) as rt:
        rt.threads.record(
            f"{tenant}-1", tenant_id=tenant, workflow="w", title="t", status="running"
        )
        other = f"{tenant}-other"
        assert rt.threads.list(tenant_id=other) == []
        with pytest.raises(ThreadNotFound, match="podium threads --tenant"):
            rt.threads.get(f"{tenant}-1", tenant_id=other)
        # Another tenant cannot take over the thread id either.
        with pytest.raises(ThreadNotFound):
            rt.threads.record(
                f"{tenant}-1", tenant_id=other, workflow="w", title="x", status="running"
            )
        assert rt.threads.get(f"{tenant}-1", tenant_id=tenant).title == "t"


def test_a_thread_of_another_tenant_cannot_be_run(tenant):
    config = {"configurable": {"thread_id": f"{tenant}-owned"}}
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(podium.build_research_brief())
        run_demo(app, f"{tenant}-owned", tenant=tenant)
        with pytest.raises(ThreadNotFound):
            app.invoke({"goal": "steal"}, config, context=podium.RunContext(tenant_id="intruder"))


def test_sqlite_directory_is_created(tmp_path):
    target = tmp_path / "deep" / "er" / "p.db"
    with podium.open_runtime(f"sqlite:///{target}") as rt:
        assert rt.url.kind == "sqlite"
    assert target.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x", "unsupported database URL"),
        ("sqlite://relative.db", "no file path"),
        (
            "postgresql://postgres:pw@127.0.0.1:1/none",
            "cannot connect to postgresql://postgres:***@127.0.0.1:1/none",
        ),
    ],
)
def test_bad_database_urls(url, message):
    with pytest.raises(DatabaseError) as info, podium.open_runtime(url):
        pass
    assert message in str(info.value)
    assert ":pw@" not in str(info.value)


def test_unwritable_sqlite_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with (
        pytest.raises(DatabaseError, match="pick a writable path"),
        podium.open_runtime(f"sqlite:///{blocker}/sub/p.db"),
    ):
        pass
