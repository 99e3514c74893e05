"""Interleaved repetitions, medians, paired ratios, and the `Figure` every case reports."""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table only)."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Figure:
    """One row of the results table.

    Attributes:
        case: The case ("overhead", "context", ...).
        metric: What is measured, e.g. "ms per delegation, SQLite".
        podium: podium's median.
        baseline: The baseline's name.
        baseline_value: The baseline's median.
        ratio: Median of the per-repetition ratios podium / baseline.
        target: The target, e.g. "<= 1.3"; None for a reference row.
        met: Whether the ratio meets the target; None for a reference row.
        samples: The raw values per system, in repetition order.
        note: Anything the reader needs (what is counted, what was skipped).
    """

    case: str
    metric: str
    podium: float | None
    baseline: str
    baseline_value: float | None
    ratio: float | None
    target: str | None = None
    met: bool | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(ratio: float, target: str | None) -> bool | None:
    """Whether `ratio` meets a target written as "<= x" or ">= x"."""
    if target is None:
        return None
    op, value = target.split()
    return ratio <= float(value) if op == "<=" else ratio >= float(value)


def paired_ratio(top: list[float], bottom: list[float]) -> float:
    """Median of the ratios of values measured in the same repetition."""
    return statistics.median(a / b for a, b in zip(top, bottom, strict=True))


def figure(
    case: str,
    metric: str,
    samples: dict[str, list[float]],
    *,
    subject: str,
    baseline: str,
    target: str | None,
    note: str = "",
) -> Figure:
    """A row comparing `subject` against `baseline` from interleaved samples."""
    ratio = paired_ratio(samples[subject], samples[baseline])
    return Figure(
        case=case,
        metric=metric,
        podium=statistics.median(samples[subject]),
        baseline=baseline,
        baseline_value=statistics.median(samples[baseline]),
        ratio=ratio,
        target=target,
        met=check(ratio, target),
        samples={subject: samples[subject], baseline: samples[baseline]},
        note=note,
    )


def interleave(
    runners: dict[str, Callable[[], float]], reps: int, label: str
) -> dict[str, list[float]]:
    """Run every runner once per repetition, in turn (A B A B ...); return their values.

    One untimed warm-up round goes first, so imports and caches do not land on the first
    system measured.
    """
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(-1, reps):
        for name, run in runners.items():
            log(f"  {label}: {'warm-up' if rep < 0 else f'rep {rep + 1}/{reps}'} {name}")
            gc.collect()
            value = run()
            if rep >= 0:
                samples[name].append(value)
    return samples


async def ainterleave(
    runners: dict[str, Callable[[], Awaitable[float]]], reps: int, label: str
) -> dict[str, list[float]]:
    """`interleave` for coroutine runners."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(-1, reps):
        for name, run in runners.items():
            log(f"  {label}: {'warm-up' if rep < 0 else f'rep {rep + 1}/{reps}'} {name}")
            gc.collect()
            value = await run()
            if rep >= 0:
                samples[name].append(value)
    return samples
