"""The workflow the scale-out tests serve beside `research_brief` (test harness only).

    START -> supervisor -> (researcher* | analyst | writer -> supervisor)* -> aggregate -> END

`slow_brief` is research_brief with two changes a failover test needs: every model call
takes `SCALEOUT_MODEL_LATENCY` seconds (so runs are still in flight when a process is
killed), and `publish_report` also appends one line to `effects.log` in the working
directory each time it really runs (so a test counts executions, not files, which a second
write would only overwrite). While a file `pause-after-publish` exists there, the tool
sleeps that many seconds after its effect and before it returns: a test kills the process
in that window, between the effect and the ledger's record of it.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

from podium._demo import DemoChatModel
from podium.graphs.catalog import register_workflow
from podium.graphs.research_brief import research_agents
from podium.graphs.workflow import build_workflow
from podium.server.graphs import serve
from podium.tools import publish_report as podium_publish

#: The benchmark's copy of the shipped policy, rate limits raised (gates unchanged).
UNLIMITED_POLICY = Path(__file__).resolve().parents[3] / "bench" / "scaleout_policy.yaml"
LATENCY = float(os.environ.get("SCALEOUT_MODEL_LATENCY", "0.3"))
EFFECTS_LOG = Path("effects.log")
PAUSE_AFTER_PUBLISH = Path("pause-after-publish")


class LatentDemo(DemoChatModel):
    """The demo model, answering after `LATENCY` seconds."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        time.sleep(LATENCY)
        return super()._generate(messages, stop, run_manager, **kw)

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw):
        await asyncio.sleep(LATENCY)
        return super()._generate(messages, stop, None, **kw)


@tool
def publish_report(filename: str, content: str) -> str:
    """Publish a finished report as a markdown file.

    Args:
        filename: A file name such as "heat-pumps-brief.md" (letters, digits, '-', '_').
        content: The full markdown text of the report.
    """
    result = podium_publish.invoke({"filename": filename, "content": content})
    # One line per execution, appended in one write so two processes never interleave.
    fd = os.open(EFFECTS_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{filename} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    if PAUSE_AFTER_PUBLISH.exists():
        time.sleep(float(PAUSE_AFTER_PUBLISH.read_text() or "30"))
    return result


def build_slow_brief(model: Any = None) -> Any:
    agents = research_agents()
    writer = agents[-1].model_copy(update={"tools": [publish_report]})
    return build_workflow(
        [*agents[:-1], writer],
        name="research_brief",  # the shipped policy's workflow section applies
        supervisor="planner",
        model=LatentDemo(),
        # The shipped policy with rate limits too high to bind: twenty runs plus the steps
        # re-run after a kill would otherwise queue behind the tenant's limit (120 calls a
        # minute) past the test's deadline; what is tested here is failover.
        policies=UNLIMITED_POLICY,
    )


register_workflow("slow_brief", build_slow_brief)
slow_brief = serve("slow_brief")
