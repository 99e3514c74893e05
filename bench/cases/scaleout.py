"""Throughput across processes: 1 and 2 engine processes on PostgreSQL and Redis.

`langhost serve` processes (langgraph-runtime-pg, the open stand-in for the licensed
runtime; see tests/scaleout/cluster.py) on a fresh PostgreSQL database each and a Redis db
of their own; research_brief (`bench_brief`, bench/scaleout_workflow.py) with every model
call taking `scaleout_latency` seconds. `scaleout_runs` runs are created at once, spread
over the processes and tenants, and timed until every thread waits at its gate. Figure:
runs/s with 2 processes over runs/s with 1 (target >= 1.7). Each process runs at most
`JOBS` runs at once (N_JOBS_PER_WORKER). Skipped in quick mode: starting the engine takes
tens of seconds, building its virtual environment the first time minutes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.measure import Figure, figure, log
from bench.settings import Settings

ONE, TWO = "1 process", "2 processes"
#: Runs each process runs at once.
JOBS = 10
#: The benchmark's own Redis db (PODIUM_BENCH_REDIS_DB overrides).
REDIS_DB = int(os.environ.get("PODIUM_BENCH_REDIS_DB", "14"))
KEYS = {f"{t}-key": (t, "ana", ("editor",)) for t in ("acme", "globex", "initech", "umbrella")}
WORKFLOW = Path(__file__).resolve().parents[1] / "scaleout_workflow.py"
DEADLINE = 600.0


def _runs_per_second(processes: int, s: Settings, admin: str, redis: str) -> float:
    import httpx
    from langgraph_sdk import get_sync_client

    from tests.scaleout.cluster import Cluster, engine_env, engine_venv, fresh_databases

    workdir = s.workdir / f"scaleout-{processes}"
    workdir.mkdir(parents=True, exist_ok=True)
    venv = engine_venv(workdir / "engine-build.log")
    with fresh_databases(admin, "bench_engine", "bench_podium") as (engine_db, podium_db):
        # A fresh Redis db state: the engine's queue and heartbeats from an earlier start.
        _flush(redis)
        env = engine_env(
            database_uri=engine_db,
            podium_url=podium_db,
            redis_url=redis,
            api_keys=KEYS,
            token_secret="bench-token-secret",
            jobs_per_process=JOBS,
            model_latency=s.scaleout_latency,
        )
        cluster = Cluster(venv, workdir, env, graphs={"bench_brief": f"{WORKFLOW}:bench_brief"})
        try:
            instances = cluster.start(processes)
            keys = list(KEYS)
            threads = []
            start = time.perf_counter()
            for i in range(s.scaleout_runs):
                key, url = keys[i % len(keys)], instances[i % len(instances)].url
                api = get_sync_client(url=url, api_key=key)
                thread = api.threads.create()["thread_id"]
                api.runs.create(thread, "bench_brief", input={"goal": _goal(i)})
                threads.append((key, thread))
            pending = list(threads)
            while pending and time.perf_counter() - start < DEADLINE:
                url = instances[0].url
                pending = [
                    (key, t)
                    for key, t in pending
                    if get_sync_client(url=url, api_key=key).threads.get(t)["status"]
                    != "interrupted"
                ]
                if pending:
                    time.sleep(0.1)
            elapsed = time.perf_counter() - start
            if pending:
                raise RuntimeError(
                    f"{len(pending)} of {s.scaleout_runs} runs not at their gate after "
                    f"{DEADLINE:.0f} s on {processes} process(es):\n{instances[0].log_tail()}"
                )
        except httpx.HTTPError as exc:
            raise RuntimeError(f"scale-out engine request failed: {exc}") from exc
        finally:
            cluster.stop()
    return s.scaleout_runs / elapsed


def _goal(i: int) -> str:
    return f"Write a brief on site {i:02d} heat pump adoption and grid storage costs"


def _flush(redis: str) -> None:
    import socket

    host_port, _, db = redis.split("://", 1)[-1].partition("/")
    host, _, port = host_port.partition(":")
    with socket.create_connection((host, int(port or 6379)), timeout=3) as sock:
        command = f"*2\r\n$6\r\nSELECT\r\n${len(db)}\r\n{db}\r\n*1\r\n$7\r\nFLUSHDB\r\n"
        sock.sendall(command.encode())
        sock.recv(64)


def run(settings: Settings) -> list[Figure]:
    s = settings
    metric = (
        f"runs/s to the gate, {s.scaleout_runs} research_brief runs, "
        f"{s.scaleout_latency * 1000:.0f} ms model latency, 2 vs 1 engine processes"
    )
    empty = Figure("scaleout", metric, None, ONE, None, None, target=">= 1.7")
    if s.quick:
        empty.note = "skipped in quick mode (engine start-up takes tens of seconds)"
        return [empty]
    from tests.scaleout.cluster import DEFAULT_ADMIN_URL, DEFAULT_REDIS, redis_reachable

    admin = os.environ.get("PODIUM_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    redis = f"{os.environ.get('PODIUM_BENCH_REDIS_URL', DEFAULT_REDIS)}/{REDIS_DB}"
    if s.postgres_url is None or (reason := redis_reachable(redis)) is not None:
        empty.note = f"skipped: {s.postgres_skip or reason}"
        return [empty]
    log("scaleout")
    samples: dict[str, list[float]] = {ONE: [], TWO: []}
    for rep in range(s.scaleout_reps):
        for processes, name in ((1, ONE), (2, TWO)):
            log(f"  scaleout: rep {rep + 1}/{s.scaleout_reps} {name}")
            samples[name].append(_runs_per_second(processes, s, admin, redis))
    note = f"{JOBS} runs at once per process (N_JOBS_PER_WORKER); 4 tenants; engine: langhost"
    return [
        figure("scaleout", metric, samples, subject=TWO, baseline=ONE, target=">= 1.7", note=note)
    ]
