"""`GovernorCore`: what the tool-call path, the model fallback chain and in-doubt effects
use of the governor (its services, circuit breakers and records).

They take a `GovernorCore`, not a `Governor`, because the governor (the model path)
imports them: this keeps the dependency one way.
"""

from __future__ import annotations

from podium.governance.breaker_gate import BreakerGate
from podium.governance.records import Recording


class GovernorCore(BreakerGate, Recording):
    """Services, breakers and records; `podium.governance.governor.Governor` adds the
    model path and the tool-node hooks."""
