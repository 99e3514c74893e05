"""The same workload built three ways: podium, plain LangGraph, and langgraph-supervisor.

Three agents (researcher, analyst, writer) answer with the same fake worker model; the
supervisor delegates to them in turn K times, then finishes. Every system gets equivalent
fake models (`bench.fakes`), the same agent descriptions and a system prompt of its own kind.

    podium:               START -> supervisor -> (worker subgraph -> supervisor)* -> aggregate
    plain LangGraph:      START -> supervisor -(Command)-> (worker node -> supervisor)* -> END
    langgraph-supervisor: create_supervisor([create_react_agent(...)] * 3, model=..., prompt=...)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import podium
from bench.fakes import RouterModel, WorkerModel, named_answers, podium_done

AGENTS: list[tuple[str, str]] = [
    ("researcher", "Finds facts in the document corpus."),
    ("analyst", "Computes figures and compares them."),
    ("writer", "Writes the brief from the findings."),
]
NAMES = [name for name, _ in AGENTS]
GOAL = "Write a short brief on the company's revenue growth and its main risks."

WORKER_PROMPT = (
    "You are {agent}, an agent of the research team. {description} "
    "Do the task you are given. Answer with the result only."
)


def router_model(k: int, style: str, *, latency: float = 0.0, record: bool = False) -> RouterModel:
    """The supervisor's model for a system: podium reads JSON, the others differ (see fakes)."""
    if style == "podium":
        return RouterModel(
            agents=NAMES, k=k, style="json", count_done=podium_done, latency=latency, record=record
        )
    count = named_answers(NAMES)
    json_or_tool = "tool" if style == "supervisor" else "json"
    return RouterModel(
        agents=NAMES, k=k, style=json_or_tool, count_done=count, latency=latency, record=record
    )


def worker_model(*, latency: float = 0.0) -> WorkerModel:
    return WorkerModel(latency=latency)


# -- podium -----------------------------------------------------------------------------

#: Governance on: every check runs, with limits that never bind (see the file).
POLICY = Path(__file__).with_name("policy.yaml")


def podium_agents(worker: WorkerModel) -> list[podium.AgentSpec]:
    return [podium.AgentSpec(name=n, description=d, model=worker) for n, d in AGENTS]


def build_podium_router(router: RouterModel, worker: WorkerModel, k: int):
    """podium with `supervisor="router"` (max_turns raised only when K needs it)."""
    return podium.build_workflow(
        podium_agents(worker),
        name="bench",
        supervisor="router",
        model=router,
        max_turns=max(50, k + 1),
        policies=POLICY,
    )


def build_podium_plan(worker: WorkerModel, tasks: int):
    """podium with a static plan of `tasks` independent tasks (spread over the agents)."""
    plan = podium.Plan(
        tasks=[
            podium.PlannedTask(
                id=f"t{i}",
                agent=NAMES[(i - 1) % len(NAMES)],
                instruction=f"Part {i} of the brief: collect the facts on topic {i}.",
            )
            for i in range(1, tasks + 1)
        ]
    )
    return podium.build_workflow(
        podium_agents(worker), name="bench_fanout", supervisor=plan, policies=POLICY
    )


def podium_input() -> dict[str, Any]:
    return {"goal": GOAL}


def check_podium(output: dict[str, Any], k: int) -> None:
    """Fail loudly unless the run completed with exactly `k` tasks."""
    tasks = output.get("tasks") or {}
    if output.get("status") != "completed" or len(tasks) != k:
        raise RuntimeError(
            f"podium run did not do {k} delegations: status={output.get('status')!r}, "
            f"tasks={len(tasks)}, error={output.get('error')!r}"
        )


# -- langgraph-supervisor ---------------------------------------------------------------


def build_supervisor(router: RouterModel, worker: WorkerModel):
    """`create_supervisor` with default settings and react agents, as its README shows."""
    try:
        from langgraph_supervisor import create_supervisor
    except ImportError as exc:
        raise RuntimeError(
            "langgraph-supervisor is not installed; it is a baseline of the benchmark: "
            "pip install -r bench/requirements.txt"
        ) from exc

    with warnings.catch_warnings():
        # create_react_agent moved to langchain.agents in LangGraph 1.0; the library's own
        # README still builds its agents with it, so the baseline does too.
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        agents = [
            create_react_agent(
                model=worker,
                tools=[],
                name=name,
                prompt=WORKER_PROMPT.format(agent=name, description=description),
            )
            for name, description in AGENTS
        ]
    lines = "\n".join(f"- {n}: {d}" for n, d in AGENTS)
    prompt = (
        "You are a team supervisor managing a researcher, an analyst and a writer.\n"
        f"Agents:\n{lines}\n"
        "Hand the work to one agent at a time; answer the user when the goal is met."
    )
    return create_supervisor(agents, model=router, prompt=prompt)


def supervisor_input() -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": GOAL}]}


def check_messages(output: dict[str, Any], k: int, names: Sequence[str] = NAMES) -> None:
    """Fail loudly unless `k` worker answers are in the final messages."""
    done = named_answers(names)(output.get("messages") or [])
    if done != k:
        raise RuntimeError(f"baseline run did {done} delegations, expected {k}")
