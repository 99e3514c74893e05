"""The benchmark cases, in the order they run. Each is `run(settings) -> list[Figure]`."""

from bench.cases import (
    context,
    fairness,
    fanout,
    overhead,
    scaleout,
    storage,
    streaming,
    throughput,
    tracing,
)

CASES = {
    "overhead": overhead.run,
    "context": context.run,
    "fanout": fanout.run,
    "throughput": throughput.run,
    "storage": storage.run,
    "tracing": tracing.run,
    "streaming": streaming.run,
    "fairness": fairness.run,
    "scaleout": scaleout.run,
}

__all__ = ["CASES"]
