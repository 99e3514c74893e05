"""The circuit breaker as pure functions: (state, event, now, settings) -> new state.

closed --N failures within W s--> open --cool-down C--> half_open (one probe call)
half_open --probe success--> closed;  half_open --probe failure--> open (new cool-down)

No I/O and no clock here: `podium.stores.breakers.store` loads a state row, applies one of
these functions under a lock and writes the result back, so every process agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from podium.errors import ConfigurationError

BreakerStatus = Literal["closed", "open", "half_open"]
BreakerEvent = Literal["call", "success", "failure"]


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """When a breaker opens and how long it stays open.

    Attributes:
        failure_threshold: Failures within `window` that open the breaker (>= 1).
        window: Seconds a failure counts for (> 0).
        cooldown: Seconds an open breaker refuses calls before it lets one probe through
            (>= 0). Also the longest a probe may stay unanswered: a probe that has not
            reported after `cooldown` seconds is presumed lost (its process died) and the
            next caller becomes the new probe, so a crash never wedges a breaker half-open.
    """

    failure_threshold: int = 5
    window: float = 60.0
    cooldown: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ConfigurationError(
                f"breaker failure_threshold {self.failure_threshold!r} must be at least 1"
            )
        if self.window <= 0:
            raise ConfigurationError(f"breaker window {self.window!r} must be > 0 seconds")
        if self.cooldown < 0:
            raise ConfigurationError(f"breaker cooldown {self.cooldown!r} must be >= 0 seconds")


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One breaker's state, as stored.

    Attributes:
        status: "closed", "open" or "half_open" (a probe call is in flight).
        failures: Times of the recent failures while closed (at most `failure_threshold`).
        opened_at: When the breaker last opened; None while closed.
        next_probe_at: While open or half-open, when the next call will be let through.
        last_error: The error of the last recorded failure.
    """

    status: BreakerStatus = "closed"
    failures: tuple[float, ...] = ()
    opened_at: float | None = None
    next_probe_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class BreakerDecision:
    """Whether one call may go ahead.

    Attributes:
        allowed: True when the call may run.
        state: The breaker's status after this decision.
        retry_after: Seconds until a call will next be let through, when refused.
        probe: True when this call is the single half-open probe; its outcome (success or
            failure) closes or re-opens the breaker.
    """

    allowed: bool
    state: BreakerStatus
    retry_after: float | None = None
    probe: bool = False


CLOSED = BreakerState()


def on_call(
    state: BreakerState, now: float, settings: BreakerSettings
) -> tuple[BreakerState, BreakerDecision]:
    """A caller asks to run a call: the new state and the decision."""
    if state.status == "closed":
        return state, BreakerDecision(allowed=True, state="closed")
    assert state.next_probe_at is not None, "an open breaker always has a probe time"
    if now < state.next_probe_at:
        wait = state.next_probe_at - now
        return state, BreakerDecision(allowed=False, state=state.status, retry_after=wait)
    # The cool-down is over (or the previous probe's slot expired): this caller is the probe.
    probing = replace(state, status="half_open", next_probe_at=now + settings.cooldown)
    return probing, BreakerDecision(allowed=True, state="half_open", probe=True)


def on_success(state: BreakerState, now: float) -> BreakerState:
    """A call succeeded.

    Half-open: the probe worked, so the breaker closes. Closed: nothing to forget, since
    failures count within a time window rather than in a row. Open: a call that started
    before the breaker opened proves little, so the cool-down stands.
    """
    if state.status == "half_open":
        return CLOSED
    return state


def on_failure(
    state: BreakerState, now: float, settings: BreakerSettings, error: str = ""
) -> BreakerState:
    """A call failed: count it while closed, re-open on a failed probe."""
    if state.status == "half_open":
        return _opened(now, settings, error)
    if state.status == "open":
        # A straggler that started before the breaker opened: keep the cool-down as it is.
        return replace(state, last_error=error)
    recent = (*(t for t in state.failures if t > now - settings.window), now)
    if len(recent) >= settings.failure_threshold:
        return _opened(now, settings, error)
    return replace(state, failures=recent[-settings.failure_threshold :], last_error=error)


def step(
    state: BreakerState,
    event: BreakerEvent,
    now: float,
    settings: BreakerSettings,
    *,
    error: str = "",
) -> BreakerState:
    """Apply one event; `on_call`, `on_success` and `on_failure` in one entry point."""
    if event == "call":
        return on_call(state, now, settings)[0]
    if event == "success":
        return on_success(state, now)
    if event == "failure":
        return on_failure(state, now, settings, error)
    raise ValueError(f"unknown breaker event {event!r}; use 'call', 'success' or 'failure'")


def _opened(now: float, settings: BreakerSettings, error: str) -> BreakerState:
    return BreakerState(
        status="open", opened_at=now, next_probe_at=now + settings.cooldown, last_error=error
    )
