"""Tracing: a podium run with Langfuse tracing on against the same run with tracing off.

The workload of the overhead case (the router delegating K times to three agents), every
model call with 50 ms of simulated latency, runs on one in-memory runtime. "On" is podium's
own integration as the entry points use it: one `Tracer` with default settings and
`tracing_config(...)` merged into each run's config; "off" is `tracing_config(None, ...)`,
i.e. nothing. The SDK exports to a stand-in Langfuse server this case starts on 127.0.0.1
(OTLP/protobuf at /api/public/otel/v1/traces), so nothing leaves the machine.

Timed: `invoke` only. After each traced run, an untimed `flush()` sends that run's spans, so
no export lands on the next untraced run; its duration is reported as a reference, with a
second reference ratio that counts it in the traced run (export fully serialised after the
run, the worst case: a server exports on the SDK's thread, mostly during model latency).

Spans dropped: a span processor added to the tracer's own OpenTelemetry provider records
the id of every span that ends (what the Langfuse processor is handed to export); after
`shutdown()` those ids are compared with the span ids the server received.
"""

from __future__ import annotations

import gzip
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

import podium
from bench import workloads as w
from bench.measure import Figure, check, figure, interleave, log
from bench.settings import Settings
from podium.tracing.tracer import LangfuseSettings, Tracer, tracing_config

OTLP_PATH = "/api/public/otel/v1/traces"
#: Simulated latency of every model call, seconds (the issue's 50 ms, quick mode too).
LATENCY = 0.05
#: Delegations per run: full and quick.
K, QUICK_K = 10, 3
ON = "podium, Langfuse on"
OFF = "podium, tracing off"
ON_FLUSHED = "podium, Langfuse on + flush"
TENANT = "bench"


class Collector:
    """A stand-in Langfuse server: records the OTLP trace exports, answers 200 to anything."""

    def __init__(self) -> None:
        self.exports: list[bytes] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == OTLP_PATH:
                    with collector._lock:
                        collector.exports.append(body)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_PUT = do_PATCH = do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def span_ids(self) -> list[tuple[str, str]]:
        """(trace id, span id) of every span received, duplicates included."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        with self._lock:
            bodies = list(self.exports)
        found = []
        for body in bodies:
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    found += [(s.trace_id.hex(), s.span_id.hex()) for s in scope.spans]
        return found

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.server_close()


class EndedSpans(SpanProcessor):
    """Records (trace id, span id) of every span that ends on the provider it is added to."""

    def __init__(self) -> None:
        self.ids: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        with self._lock:
            self.ids.append((format(context.trace_id, "032x"), format(context.span_id, "016x")))

    def count(self) -> int:
        with self._lock:
            return len(self.ids)


def make_tracer(url: str) -> tuple[Tracer, EndedSpans]:
    """podium's Tracer (default settings, a fresh key) exporting to `url`, and its span log."""
    tracer = Tracer(LangfuseSettings(f"pk-lf-bench-{uuid.uuid4().hex[:8]}", "sk-lf-bench", url))
    ended = EndedSpans()
    tracer.add_span_processor(ended)
    return tracer, ended


def _invoke(app: Any, tracer: Tracer | None, k: int) -> float:
    """Seconds one run takes, traced by `tracer` (None: off); checked for `k` delegations."""
    thread_id = str(uuid.uuid4())
    traced = tracing_config(
        tracer, thread_id=thread_id, tenant_id=TENANT, workflow="bench", agents=w.NAMES
    )
    config = {"configurable": {"thread_id": thread_id}, **traced}
    start = time.perf_counter()
    output = app.invoke(w.podium_input(), config)
    elapsed = time.perf_counter() - start
    w.check_podium(output, k)
    return elapsed


def runners(
    app: Any, tracer: Tracer, ended: EndedSpans, k: int, records: dict[str, list[float]]
) -> dict[str, Callable[[], float]]:
    """Off and on; the on runner flushes (untimed) and records spans created and flush time."""

    def on() -> float:
        before = ended.count()
        elapsed = _invoke(app, tracer, k)
        start = time.perf_counter()
        tracer.flush()
        records["flush"].append(time.perf_counter() - start)
        records["created"].append(float(ended.count() - before))
        return elapsed

    return {OFF: lambda: _invoke(app, None, k), ON: on}


def dropped(ended: list[tuple[str, str]], received: list[tuple[str, str]]) -> tuple[int, int]:
    """(spans ended but never received, spans received more than once or never ended)."""
    got, made = Counter(received), set(ended)
    lost = sum(1 for span in made if span not in got)
    extra = sum(n - 1 for n in got.values()) + sum(1 for span in got if span not in made)
    return lost, extra


def run(settings: Settings) -> list[Figure]:
    k = QUICK_K if settings.quick else K
    log("tracing")
    records: dict[str, list[float]] = {"flush": [], "created": []}
    collector = Collector()
    tracer, ended = make_tracer(collector.url)
    try:
        with podium.open_runtime("memory://") as rt:
            router = w.router_model(k, "podium", latency=LATENCY)
            app = rt.compile(w.build_podium_router(router, w.worker_model(latency=LATENCY), k))
            samples = interleave(runners(app, tracer, ended, k, records), settings.reps, "tracing")
        tracer.shutdown()
        received = collector.span_ids()
    finally:
        tracer.shutdown()
        collector.close()
    records = {name: values[1:] for name, values in records.items()}  # drop the warm-up
    return _figures(k, samples, records, ended.ids, received)


def _figures(
    k: int,
    samples: dict[str, list[float]],
    records: dict[str, list[float]],
    ended: list[tuple[str, str]],
    received: list[tuple[str, str]],
) -> list[Figure]:
    metric = f"seconds per run, K={k}, {LATENCY * 1000:.0f} ms model latency"
    lost, extra = dropped(ended, received)
    created = len(set(ended))
    per_run = Counter(trace for trace, _ in received)
    flushed = {
        ON_FLUSHED: [a + b for a, b in zip(samples[ON], records["flush"], strict=True)],
        OFF: samples[OFF],
    }
    return [
        figure("tracing", metric, samples, subject=ON, baseline=OFF, target="<= 1.05"),
        figure(
            "tracing",
            metric,
            flushed,
            subject=ON_FLUSHED,
            baseline=OFF,
            target=None,
            note="reference: the traced run plus its flush() (export serialised after the run), "
            f"flush median {statistics.median(records['flush']) * 1000:.1f} ms",
        ),
        Figure(
            case="tracing",
            metric="spans dropped (created, not received by the endpoint)",
            podium=float(lost),
            baseline="spans created",
            baseline_value=float(created),
            ratio=lost / created if created else None,
            target="<= 0",
            met=check(lost / created, "<= 0") if created else False,
            samples={"created per traced run": records["created"]},
            note=f"{created} spans ended on the tracer's provider in {len(per_run)} traced runs "
            f"(warm-up included); {len(received)} received, {extra} duplicate or unknown",
        ),
        Figure(
            case="tracing",
            metric="spans exported per run",
            podium=statistics.median(per_run.values()) if per_run else 0.0,
            baseline="spans created per run",
            baseline_value=statistics.median(records["created"]),
            ratio=(
                statistics.median(per_run.values()) / statistics.median(records["created"])
                if per_run
                else None
            ),
            target=None,
            note="reference: spans received per trace (one trace per run)",
        ),
    ]
