"""The workflow the scale-out benchmark serves on the engine processes (not podium's).

    START -> supervisor -> (researcher* | analyst | writer -> supervisor)* -> aggregate -> END

`bench_brief` is research_brief (its agents, the shipped policy's gates) whose every model
call takes `SCALEOUT_MODEL_LATENCY` seconds, under `scaleout_policy.yaml`: the shipped
policy with rate limits too high to bind.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from podium._demo import DemoChatModel
from podium.graphs.catalog import register_workflow
from podium.graphs.research_brief import research_agents
from podium.graphs.workflow import build_workflow
from podium.server.graphs import serve

LATENCY = float(os.environ.get("SCALEOUT_MODEL_LATENCY", "0.5"))
POLICY = Path(__file__).with_name("scaleout_policy.yaml")


class LatentDemo(DemoChatModel):
    """The demo model, answering after `LATENCY` seconds."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        time.sleep(LATENCY)
        return super()._generate(messages, stop, run_manager, **kw)

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw):
        await asyncio.sleep(LATENCY)
        return super()._generate(messages, stop, None, **kw)


def build_bench_brief(model: Any = None) -> Any:
    return build_workflow(
        research_agents(),
        name="research_brief",  # the policy's workflow section applies
        supervisor="planner",
        model=LatentDemo(),
        policies=POLICY,
    )


register_workflow("bench_brief", build_bench_brief)
bench_brief = serve("bench_brief")
