"""Streaming: time to the first answer token through podium against the model's own.

A one-task workflow (a static plan, so no planner call comes first) whose writer is a
streaming fake with a set first-token delay runs under `stream_mode=["custom",
"messages"]` with subgraphs, as the CLI and the app run it; the clock stops at the first
token of the answer. The baseline is the same model streamed directly: its first chunk
arrives after the delay. The difference is what podium adds before the first token
(dispatch, governance, checkpoints); the target is at most 20 ms.
"""

from __future__ import annotations

import statistics
import time

from langchain_core.messages import HumanMessage

import podium
from bench.measure import Figure, interleave, log
from bench.settings import Settings
from podium.streaming import STREAM_MODES, parts
from podium.testing import StreamingChatModel

ANSWER = "Storage grew fourfold while heat pump sales rose by half in three years."
FIRST_TOKEN_DELAY = 0.1
TARGET_MS = 20.0
MODEL = "model alone"


def _model() -> StreamingChatModel:
    return StreamingChatModel(
        responses=[ANSWER], name="writer", first_token_delay=FIRST_TOKEN_DELAY, token_delay=0.005
    )


def _workflow(model: StreamingChatModel):
    return podium.build_workflow(
        [podium.AgentSpec(name="writer", model=model)],
        name="streaming",
        supervisor=podium.Plan(
            tasks=[podium.PlannedTask(id="t1", agent="writer", instruction="write")]
        ),
    )


def run(settings: Settings) -> list[Figure]:
    figures = []
    for label, url in (("memory", "memory://"), ("SQLite", settings.sqlite_url("streaming"))):
        log(f"streaming: {label}")
        with podium.open_runtime(url) as rt:
            count = 0

            def through_podium() -> float:
                nonlocal count
                count += 1
                model = _model()
                app = rt.compile(_workflow(model))
                config = {"configurable": {"thread_id": f"ttft-{count}"}}
                started = time.perf_counter()
                stream = app.stream(
                    {"goal": "brief"},
                    config,
                    context=podium.RunContext(tenant_id="bench"),
                    stream_mode=STREAM_MODES,
                    subgraphs=True,
                )
                first = None
                for kind, data in parts(stream):
                    if first is None and kind == "token" and data.text:
                        first = time.perf_counter() - started
                assert first is not None, "no answer token arrived"
                model.assert_consumed()
                return first * 1000

            def model_alone() -> float:
                model = _model()
                started = time.perf_counter()
                first = None
                for chunk in model.stream([HumanMessage("write")]):
                    if first is None and chunk.content:
                        first = time.perf_counter() - started
                assert first is not None
                return first * 1000

            samples = interleave(
                {"podium": through_podium, MODEL: model_alone},
                settings.reps,
                f"streaming/{label}",
            )
        pairs = list(zip(samples["podium"], samples[MODEL], strict=True))
        added = [a - b for a, b in pairs]
        figures.append(
            Figure(
                case="streaming",
                metric=f"ms to first answer token, {label}",
                podium=statistics.median(samples["podium"]),
                baseline=MODEL,
                baseline_value=statistics.median(samples[MODEL]),
                ratio=statistics.median(a / b for a, b in pairs),
                target=f"<= +{TARGET_MS:.0f} ms",
                met=statistics.median(added) <= TARGET_MS,
                samples=samples,
                note=f"first-token delay {FIRST_TOKEN_DELAY * 1000:.0f} ms; podium adds "
                f"{statistics.median(added):.1f} ms (median)",
            )
        )
    return figures
