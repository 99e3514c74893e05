"""Circuit breakers around the governor's calls, with a short read cache.

The governor asks before a call (`breaker_allow`, which fails fast with `CircuitOpen`)
and reports after it. Settings come from the policy (`tools.<name>.breaker`,
`models.<name>.breaker`, per tenant when it says so), else the defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.governance.recovery import classify
from podium.governance.scope import Scope
from podium.policies.ratelimit import model_entry
from podium.stores.breakers.store import BreakerSettings, CircuitOpen, breaker_key

if TYPE_CHECKING:
    from podium.stores.services import Services

#: Seconds a breaker seen closed is trusted without reading it again.
BREAKER_CACHE = 1.0


class BreakerGate:
    """Mixin of the governor: `services`, `breaker` (default settings) and `_closed` (the
    cache of breakers seen closed, key -> until when) are set by the governor."""

    services: Services
    breaker: BreakerSettings
    _closed: dict[str, float]

    def _breaker_check(self, kind: str, prepared: Any) -> None:
        self.breaker_allow(kind, prepared.label, prepared.scope)

    def _breaker_of(self, kind: str, name: str, scope: Scope) -> tuple[str, BreakerSettings]:
        """The breaker key and settings of a tool or model (the policy may make it per tenant)."""
        spec = None
        if scope.policies is not None:
            if kind == "tool" and name in scope.policies.tools:
                spec = scope.policies.tools[name].breaker
            elif kind == "model" and (entry := model_entry(scope.policies, name)) is not None:
                spec = entry[1].breaker
        if spec is None:
            return breaker_key(kind, name), self.breaker
        key = breaker_key(kind, name, tenant_id=scope.tenant_id if spec.per_tenant else None)
        return key, BreakerSettings(
            failure_threshold=spec.failures, window=spec.window, cooldown=spec.cooldown
        )

    def _healthy(self, kind: str, name: str, scope: Scope) -> bool:
        """True while a recent check found the breaker closed (no read needed)."""
        key, _ = self._breaker_of(kind, name, scope)
        return self._closed.get(key, 0.0) > self.services.clock()

    def breaker_allow(self, kind: str, name: str, scope: Scope) -> None:
        """Fail fast (CircuitOpen) while the breaker of `kind:name` is open.

        A closed breaker is remembered for `BREAKER_CACHE` seconds, so the usual call costs
        no database read; any failure recorded here forgets it at once, and another
        process's failures are seen within that time.
        """
        key, settings = self._breaker_of(kind, name, scope)
        if self._closed.get(key, 0.0) > self.services.clock():
            return
        decision = self.services.breakers.before_call(key, settings, scope.tenant_id)
        if not decision.allowed:
            self._closed.pop(key, None)
            raise CircuitOpen(key, decision.retry_after or 0.0, state=decision.state)
        if decision.state == "closed":
            self._closed[key] = self.services.clock() + BREAKER_CACHE
        else:
            self._closed.pop(key, None)

    def breaker_success(self, kind: str, name: str, scope: Scope) -> None:
        key, _ = self._breaker_of(kind, name, scope)
        if self._closed.get(key, 0.0) > self.services.clock():
            return  # closed a moment ago: a success changes nothing
        self.services.breakers.record_success(key, scope.tenant_id)

    def breaker_failure(self, kind: str, name: str, scope: Scope, exc: BaseException) -> None:
        if classify(exc) != "transient" or isinstance(exc, CircuitOpen):
            return
        key, settings = self._breaker_of(kind, name, scope)
        self._closed.pop(key, None)
        self.services.breakers.record_failure(
            key, settings, scope.tenant_id, f"{type(exc).__name__}: {exc}"
        )
