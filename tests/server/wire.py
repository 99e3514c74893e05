"""A workflow the server tests serve beside `research_brief` (test harness only).

    START -> supervisor -> writer -> aggregate -> END

`wire_brief` runs one task on `openai:gpt-4o-mini`, a model made from its string as a
user's served workflow would name it; the server's environment points `OPENAI_BASE_URL`
at the suite's scripted OpenAI-compatible server (tests/fake_openai), so the run goes
over the real client and wire protocol, and its usage and cost are the provider's.
"""

from __future__ import annotations

from typing import Any

from podium import AgentSpec, Plan
from podium.graphs.catalog import register_workflow
from podium.graphs.workflow import build_workflow
from podium.server.graphs import serve


def build_wire(model: Any = None) -> Any:
    return build_workflow(
        [AgentSpec(name="writer", description="Writes a short brief.")],
        name="wire_brief",
        supervisor=Plan.chain(("writer", "Write the brief.")),
        model="openai:gpt-4o-mini",
    )


register_workflow("wire_brief", build_wire)
wire_brief = serve("wire_brief")
