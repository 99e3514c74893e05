"""A tool call as podium's decision sees it, and the messages it answers with.

Shared by the tool-call decision (`tool_call`), the in-doubt gate (`in_doubt`), the
governed tool and the guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage

from podium.context import current_context
from podium.governance.core import GovernorCore

if TYPE_CHECKING:
    from podium.gates.request import Decision, GateRequest
    from podium.governance.scope import Scope

#: `response_metadata` marker of a ToolMessage that is podium's refusal, not the tool's.
REFUSED = "podium_refused"


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call: the tool's name, its arguments and a call id that is never empty
    (a missing id is derived before the call reaches here)."""

    name: str
    args: dict[str, Any]
    id: str
    tool: Any = None


def node_call(tool_call: Mapping[str, Any], tool: Any = None) -> Call:
    """The `Call` of a `ToolNode`'s tool call (a model reply's), its id derived from the
    tool and the arguments when the model gave none."""
    call = Call(
        tool_call["name"], dict(tool_call.get("args") or {}), tool_call.get("id") or "", tool
    )
    if not call.id:
        from podium.governance.records import digest

        call = replace(call, id=f"node-{call.name}-{digest(call.args)[7:19]}")
    return call


def refusal(call: Call, text: str) -> ToolMessage:
    """podium's refusal of a call, as the tool result the model sees."""
    return ToolMessage(
        content=text,
        tool_call_id=call.id,
        name=call.name,
        status="error",
        response_metadata={REFUSED: True},
    )


def message(call: Call, text: str) -> ToolMessage:
    return ToolMessage(content=text, tool_call_id=call.id, name=call.name)


def record_decision(
    gov: GovernorCore, scope: Scope, gate: GateRequest, decision: Decision, **extra: Any
) -> None:
    # Who decided, as the gate verified it (the caller who resumed the run with the
    # decision, the credential), never a name the payload gave unchecked.
    who = decision.user or current_context().user_id
    gov.record(
        scope,
        "approval",
        {
            "gate_id": gate.gate_id,
            "kind": gate.kind,
            **extra,
            "decision": decision.decision,
            "comment": decision.comment,
            "user": who,
        },
        actor=f"user:{who}",
        hook="gate",
    )


def in_graph_step() -> bool:
    """Whether the caller runs inside a LangGraph step (where `interrupt()` works)."""
    from langgraph.config import get_config

    try:
        return carries_step(get_config())
    except RuntimeError:
        return False


def carries_step(config: Any) -> bool:
    """Whether `config` is the config of a running LangGraph step (a node's own config,
    which LangGraph hands the node), so an `interrupt()` under it reaches that step."""
    return "__pregel_scratchpad" in ((config or {}).get("configurable") or {})


def no_step(call: Call, why: str) -> str:
    """Why a gate could not be raised for `call` (`why`: what needs the gate), and the fix."""
    return (
        f"{call.name!r} {why}, but it was called from a thread that carries no LangGraph "
        "step (a bare ThreadPoolExecutor or threading.Thread does not copy context "
        "variables), so no gate can be raised there. It was not run. Run the call in the "
        "step's context: `pool.submit(contextvars.copy_context().run, tool.invoke, args)`, "
        "`asyncio.to_thread`, or LangChain's `ContextThreadPoolExecutor`; a tool podium "
        "handed to the worker also takes the node's config (`tool.invoke(args, config)`)."
    )
