"""A workflow the server tests serve beside `research_brief` (test harness only).

    START -> supervisor -> sleeper -> aggregate -> END

`capped_brief` runs one task whose model answers after `CAPPED_LATENCY` seconds, under a
policy whose `global.max_runs` is 2: so a test can keep a tenant's runs busy and see the
server refuse the next one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from podium import AgentSpec, Plan, PlannedTask, PolicySet
from podium._demo import DemoChatModel
from podium.graphs.catalog import register_workflow
from podium.graphs.workflow import build_workflow
from podium.server.graphs import serve

MAX_RUNS = 2
CAPPED_LATENCY = 3.0


class Slow(DemoChatModel):
    """The demo model, answering after `CAPPED_LATENCY` seconds."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        time.sleep(CAPPED_LATENCY)
        return super()._generate(messages, stop, run_manager, **kw)

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw):
        await asyncio.sleep(CAPPED_LATENCY)
        return super()._generate(messages, stop, None, **kw)


def build_capped(model: Any = None) -> Any:
    return build_workflow(
        [AgentSpec(name="sleeper", description="Writes a short note.", model=Slow())],
        name="capped_brief",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="sleeper", instruction="Note.")]),
        policies=PolicySet.model_validate({"global": {"max_runs": MAX_RUNS}}),
    )


register_workflow("capped_brief", build_capped)
capped_brief = serve("capped_brief")
