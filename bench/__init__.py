"""podium's benchmark harness: `python -m bench` (full) or `python -m bench --quick` (CI).

Every case compares podium with a baseline run in the same process, interleaved, on
scripted zero-latency (or simulated-latency) models; see BENCHMARKS.md for the results.
"""

from bench.measure import Figure
from bench.settings import Settings

__all__ = ["Figure", "Settings"]
