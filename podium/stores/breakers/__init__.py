"""Circuit breakers: a pure state machine and its shared table."""

from podium.stores.breakers.machine import BreakerSettings, BreakerState
from podium.stores.breakers.store import BreakerInfo, CircuitBreakers, CircuitOpen, breaker_key

__all__ = [
    "BreakerInfo",
    "BreakerSettings",
    "BreakerState",
    "CircuitBreakers",
    "CircuitOpen",
    "breaker_key",
]
