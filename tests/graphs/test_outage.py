"""A run whose database stays unreachable ends `failed`, in every shape a caller reads it.

The outage is the fault the stores raise after their retry window (`DatabaseUnavailable`),
raised here by the second task's model call, so every stream shape LangGraph offers can be
checked on the in-memory back end; tests/storage/test_database_faults.py stops a real
PostgreSQL server for the same path.
"""

from __future__ import annotations

from typing import Any

import pytest

import podium
from podium.graphs.outage import DATABASE_UNAVAILABLE
from podium.storage.faults import DatabaseUnavailable

URL = "postgresql://ana:***@db.example:5432/podium"


def _fault() -> DatabaseUnavailable:
    return DatabaseUnavailable(URL, 30, "connection refused")


def _flow(scripted, *, resumed: bool = False) -> Any:
    """Two chained tasks; the second one's model call meets the outage (then, after a
    resume, answers)."""
    replies: list[Any] = ["a done", _fault()]
    if resumed:
        replies.append("b done")
    return podium.build_workflow(
        [podium.AgentSpec(name="writer", model=scripted(*replies, name="writer"))],
        name="outage",
        supervisor=podium.Plan.chain(("writer", "write a"), ("writer", "write b")),
    )


def _config(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def _check_failed(state: dict, thread: str) -> None:
    assert state["status"] == "failed"
    assert state["error"].startswith(f"the database {URL} was unreachable for 30s (")
    assert f"continue it with `podium resume {thread}`" in state["error"]
    assert state["tasks"]["t1"]["status"] == "completed"  # the state the run reached


def test_invoke_returns_the_failed_run_and_the_thread_resumes(scripted):
    with podium.open_runtime("memory://") as rt:
        app = rt.compile(_flow(scripted, resumed=True))
        out = app.invoke({"goal": "g"}, _config("inv"))
        _check_failed(out, "inv")
        assert rt.threads.get("inv", tenant_id="default").status == "failed"
        assert rt.services.dead_letters.list("default") == []  # not the task's fault
        done = app.invoke(None, _config("inv"))
    assert done["status"] == "completed" and done["answer"] == "b done"


async def test_ainvoke_returns_the_failed_run(scripted):
    async with podium.open_async_runtime("memory://") as rt:
        out = await rt.compile(_flow(scripted)).ainvoke({"goal": "g"}, _config("ainv"))
    _check_failed(out, "ainv")


def test_invoke_v2_returns_the_failed_run(scripted):
    with podium.open_runtime("memory://") as rt:
        out = rt.compile(_flow(scripted)).invoke({"goal": "g"}, _config("v2"), version="v2")
    _check_failed(out.value, "v2")


def _event(chunk: dict) -> None:
    assert (chunk["event"], chunk["status"]) == ("run_finished", "failed")
    assert chunk["reason"] == DATABASE_UNAVAILABLE
    assert chunk["error"].startswith(f"the database {URL} was unreachable")


def _stream(scripted, **kwargs: Any) -> list[Any]:
    with podium.open_runtime("memory://") as rt:
        return list(rt.compile(_flow(scripted)).stream({"goal": "g"}, _config("s"), **kwargs))


def test_a_values_stream_ends_with_the_failed_state(scripted):
    _check_failed(_stream(scripted, stream_mode="values")[-1], "s")


def test_a_custom_stream_ends_with_the_run_finished_event(scripted):
    _event(_stream(scripted, stream_mode="custom")[-1])


def test_a_stream_of_both_modes_ends_with_both(scripted):
    *_, (event_mode, event), (state_mode, state) = _stream(
        scripted, stream_mode=["custom", "values"]
    )
    assert (event_mode, state_mode) == ("custom", "values")
    _event(event)
    _check_failed(state, "s")


def test_a_stream_with_subgraphs_ends_in_the_root_namespace(scripted):
    # As the CLI and the app stream a run: progress events and tokens, subgraphs included.
    namespace, mode, event = _stream(scripted, stream_mode=["custom", "messages"], subgraphs=True)[
        -1
    ]
    assert (namespace, mode) == ((), "custom")
    _event(event)
    namespace, state = _stream(scripted, stream_mode="values", subgraphs=True)[-1]
    assert namespace == ()
    _check_failed(state, "s")


def test_a_v2_stream_ends_with_a_values_part(scripted):
    part = _stream(scripted, stream_mode=["values"], version="v2")[-1]
    assert (part["type"], part["ns"]) == ("values", ())
    _check_failed(part["data"], "s")


def test_a_stream_that_cannot_carry_it_raises_it(scripted):
    with podium.open_runtime("memory://") as rt:
        stream = rt.compile(_flow(scripted)).stream(
            {"goal": "g"}, _config("upd"), stream_mode="updates"
        )
        with pytest.raises(DatabaseUnavailable) as raised:
            list(stream)
    assert raised.value.thread_id == "upd"
    assert "`podium resume upd`" in str(raised.value)
