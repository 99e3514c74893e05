"""The benchmark cases, in the order they run. Each is `run(settings) -> list[Figure]`."""

from bench.cases import context, fanout, overhead, storage, throughput, tracing

CASES = {
    "overhead": overhead.run,
    "context": context.run,
    "fanout": fanout.run,
    "throughput": throughput.run,
    "storage": storage.run,
    "tracing": tracing.run,
}

__all__ = ["CASES"]
