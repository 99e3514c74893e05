"""Storage: checkpoint bytes in PostgreSQL for one thread after K delegations.

Each system runs one thread of K delegations on the same `PostgresSaver` (podium's
runtime's); the figure is the logical size of that thread's rows in LangGraph's checkpoint
tables (see `bench.pg.checkpoint_bytes`), subgraph namespaces included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import podium
from bench import pg, plain
from bench import workloads as w
from bench.measure import Figure, figure, interleave, log
from bench.settings import Settings

SUPERVISOR = "langgraph-supervisor"
PLAIN = "plain LangGraph"


def _runner(app, make_input, check, k: int, url: str, stored: list[float]) -> Callable[[], float]:
    def run() -> float:
        thread_id = str(uuid.uuid4())
        check(app.invoke(make_input(), {"configurable": {"thread_id": thread_id}}), k)
        sizes = pg.checkpoint_bytes(url, thread_id)
        stored.append(float(sizes["stored"]))
        return float(sizes["total"])

    return run


def run(settings: Settings) -> list[Figure]:
    k, url = settings.storage_k, settings.postgres_url
    metric = f"checkpoint bytes, one thread, K={k}, PostgreSQL"
    if url is None:
        note = f"skipped: {settings.postgres_skip}"
        return [Figure("storage", metric, None, SUPERVISOR, None, None, note=note)]
    log("storage")
    stored: dict[str, list[float]] = {"podium": [], SUPERVISOR: [], PLAIN: []}
    with podium.open_runtime(url) as rt:
        saver = rt.checkpointer
        podium_app = rt.compile(
            w.build_podium_router(w.router_model(k, "podium"), w.worker_model(), k)
        )
        sup_app = w.build_supervisor(w.router_model(k, "supervisor"), w.worker_model()).compile(
            checkpointer=saver
        )
        plain_app = plain.build_plain_router(w.router_model(k, "plain"), w.worker_model()).compile(
            checkpointer=saver
        )
        runners = {
            "podium": _runner(podium_app, w.podium_input, w.check_podium, k, url, stored["podium"]),
            SUPERVISOR: _runner(
                sup_app, w.supervisor_input, w.check_messages, k, url, stored[SUPERVISOR]
            ),
            PLAIN: _runner(plain_app, plain.plain_input, w.check_messages, k, url, stored[PLAIN]),
        }
        samples = interleave(runners, settings.reps, "storage")
    for name in stored:  # drop the warm-up round
        stored[name] = stored[name][1:]
    return [
        figure("storage", metric, samples, subject="podium", baseline=SUPERVISOR, target="<= 0.2"),
        figure(
            "storage",
            metric.replace("checkpoint bytes", "stored bytes (TOAST-compressed)"),
            stored,
            subject="podium",
            baseline=SUPERVISOR,
            target=None,
            note="reference: pg_column_size, what the rows take on disk",
        ),
        figure(
            "storage",
            metric,
            samples,
            subject="podium",
            baseline=PLAIN,
            target=None,
            note="reference: hand-written graph, same workload",
        ),
    ]
