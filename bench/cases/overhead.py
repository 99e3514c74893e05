"""Overhead: time per delegation on the same checkpointer (memory, SQLite, PostgreSQL).

Every system runs K delegations with zero-latency fake models; podium, the hand-written
LangGraph graph and langgraph-supervisor are compiled with the very same checkpointer object
(podium's runtime's), so only the graphs differ.
"""

from __future__ import annotations

import podium
from bench import plain, workloads
from bench.cases._runs import per_delegation_ms
from bench.measure import Figure, figure, interleave, log
from bench.settings import Settings

PLAIN = "plain LangGraph"
PLAIN_NODES = "plain LangGraph, function nodes"
SUPERVISOR = "langgraph-supervisor"


def backends(settings: Settings) -> list[tuple[str, str | None]]:
    """(label, runtime URL or None when unavailable)."""
    return [
        ("memory", "memory://"),
        ("SQLite", settings.sqlite_url("overhead")),
        ("PostgreSQL", settings.postgres_url),
    ]


def runners(rt: podium.PodiumRuntime, k: int) -> dict[str, object]:
    """One runner per system, all compiled on `rt.checkpointer`."""
    saver = rt.checkpointer
    w = workloads
    podium_app = rt.compile(w.build_podium_router(w.router_model(k, "podium"), w.worker_model(), k))
    plain_app = plain.build_plain_router(w.router_model(k, "plain"), w.worker_model())
    nodes_app = plain.build_plain_router(
        w.router_model(k, "plain"), w.worker_model(), subgraphs=False
    )
    sup_app = w.build_supervisor(w.router_model(k, "supervisor"), w.worker_model())
    return {
        "podium": per_delegation_ms(podium_app, w.podium_input, w.check_podium, k),
        PLAIN: per_delegation_ms(
            plain_app.compile(checkpointer=saver), plain.plain_input, w.check_messages, k
        ),
        PLAIN_NODES: per_delegation_ms(
            nodes_app.compile(checkpointer=saver), plain.plain_input, w.check_messages, k
        ),
        SUPERVISOR: per_delegation_ms(
            sup_app.compile(checkpointer=saver), w.supervisor_input, w.check_messages, k
        ),
    }


def run(settings: Settings) -> list[Figure]:
    k, figures = settings.overhead_k, []
    for label, url in backends(settings):
        metric = f"ms per delegation, {label}, K={k}"
        if url is None:
            note = f"skipped: {settings.postgres_skip}"
            figures.append(Figure("overhead", metric, None, PLAIN, None, None, note=note))
            continue
        log(f"overhead: {label}")
        with podium.open_runtime(url) as rt:
            samples = interleave(runners(rt, k), settings.reps, f"overhead/{label}")
        figures += [
            figure("overhead", metric, samples, subject="podium", baseline=PLAIN, target="<= 1.1"),
            figure(
                "overhead", metric, samples, subject="podium", baseline=SUPERVISOR, target="<= 0.5"
            ),
            figure(
                "overhead",
                metric,
                samples,
                subject="podium",
                baseline=PLAIN_NODES,
                target=None,
                note="reference: agents as single function nodes, no agent loop or subgraph",
            ),
        ]
    return figures
