"""Error classes, retry with exponential backoff and jitter, and timeouts.

Classification (documented in the README):
- transient: timeouts, connection errors, HTTP 408, 409, 429 and 5xx from providers,
  rate limits, open circuit breakers. Retried with backoff, then the agent's fallback. A
  provider's `retry-after-ms` or `Retry-After` header (seconds or an HTTP date) sets the
  least wait before the next try, up to the retry's `max_delay`.
- budget: a budget is exhausted. Never retried; the task stops with a checkpoint.
- permanent: everything else (validation, policy refusals, HTTP 4xx, bugs). Not retried;
  the fallback agent gets the task. A prompt longer than the model's context window is a
  4xx the governor reports as `ContextWindowExceeded` (`podium.governance.context_window`).

LangGraph's default retry predicate does not retry `OSError`/`TimeoutError`; podium's does,
because those are exactly the network faults a provider call raises.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from podium.errors import CallTimeout, PodiumError
from podium.governance.retry_after import retry_after

T = TypeVar("T")
ErrorClass = Literal["transient", "permanent", "budget"]

_TRANSIENT_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "RateLimitError",
        "InternalServerError",
        "ServiceUnavailableError",
        "ConnectError",
        "ReadTimeout",
        "ConnectTimeout",
        "PoolTimeout",
        "RemoteProtocolError",
        "OverloadedError",
        "NodeTimeoutError",
        # langchain-core's provider-neutral errors, which provider packages now raise
        "ModelRateLimitError",
        "ModelConnectionError",
        "ModelTimeoutError",
    }
)


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How often and how patiently to retry transient failures.

    Attributes:
        attempts: Total tries, the first included (1 = no retry).
        initial_delay: Seconds before the second try.
        backoff: Factor applied to the delay after each try.
        max_delay: Cap of one delay.
        jitter: Fraction of each delay added at random (0.0 - 1.0), so callers that
            failed together do not retry together.
    """

    attempts: int = 3
    initial_delay: float = 0.5
    backoff: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.1

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1 = the first retry)."""
        base = min(self.max_delay, self.initial_delay * self.backoff ** (retry - 1))
        return base + base * self.jitter * rand()


NO_RETRY = RetrySettings(attempts=1)


def classify(exc: BaseException) -> ErrorClass:
    """Which class of failure `exc` is (see the module docstring)."""
    declared = getattr(exc, "error_class", None)  # podium errors say which class they are
    if declared in ("transient", "permanent", "budget"):
        return cast(ErrorClass, declared)
    if type(exc).__name__ == "BudgetExceeded":
        return "budget"
    status = status_code(exc)
    if status is not None:
        return "transient" if status in _RETRIED_4XX or status >= 500 else "permanent"
    if isinstance(exc, PodiumError):
        return "permanent"
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return "transient"
    # By name along the class hierarchy: providers wrap SDK errors in their own subclasses
    # (langchain-openai's OpenAIConnectionError is an openai.APIConnectionError).
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__):
        return "transient"
    if isinstance(exc, OSError):
        return "transient"
    return "permanent"


def describe(exc: BaseException) -> str:
    """`Type: message` of a failure; for a transient one with the first underlying cause
    that says more (an SDK's "Connection error." hides a stream cut mid-answer, which its
    cause names: "peer closed connection without sending complete message body")."""
    text = f"{type(exc).__name__}: {exc}"
    if classify(exc) != "transient":
        return text
    cause, depth = exc.__cause__ or exc.__context__, 0
    while cause is not None and depth < 5:
        said = str(cause)
        if said and said not in text:
            return f"{text} ({type(cause).__name__}: {said})"
        cause, depth = cause.__cause__ or cause.__context__, depth + 1
    return text


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of a provider error (on the error or its response), if any."""
    for holder in (exc, getattr(exc, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int):
            return code
    return None


#: Client errors worth another try: request timeout, conflict, too many requests.
_RETRIED_4XX = frozenset({408, 409, 429})


def _wait(settings: RetrySettings, attempt: int, exc: BaseException) -> float:
    wait = settings.delay(attempt)
    asked = retry_after(exc)
    if asked is not None:
        wait = max(wait, min(asked, settings.max_delay))
    return wait


def retry_call(
    fn: Callable[[], T],
    settings: RetrySettings,
    *,
    sleep: Callable[[float], None],
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call `fn`, retrying transient failures with backoff. Other failures raise at once."""
    for attempt in range(1, settings.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == settings.attempts or classify(exc) != "transient":
                raise
            wait = _wait(settings, attempt, exc)
            if on_retry:
                on_retry(attempt, exc, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


async def aretry_call(
    fn: Callable[[], Awaitable[T]],
    settings: RetrySettings,
    *,
    sleep: Callable[[float], Awaitable[None]],
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """`retry_call` for coroutines."""
    for attempt in range(1, settings.attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            if attempt == settings.attempts or classify(exc) != "transient":
                raise
            wait = _wait(settings, attempt, exc)
            if on_retry:
                on_retry(attempt, exc, wait)
            await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="podium-timeout")


def call_with_timeout(fn: Callable[[], T], seconds: float | None, what: str) -> T:
    """Run `fn` with a time limit in a synchronous run.

    A thread cannot be killed, so a call that overruns keeps running in the background,
    but the run moves on: the caller gets `CallTimeout` and treats the task as failed.
    """
    if not seconds:
        return fn()
    context = contextvars.copy_context()
    future = _POOL.submit(context.run, fn)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise CallTimeout(what, seconds) from None


async def acall_with_timeout(fn: Callable[[], Awaitable[T]], seconds: float | None, what: str) -> T:
    """Run a coroutine with a time limit; it is cancelled when it overruns."""
    if not seconds:
        return await fn()
    try:
        async with asyncio.timeout(seconds):  # in this task: no task of its own per call
            return await fn()
    except TimeoutError:
        raise CallTimeout(what, seconds) from None


def retry_settings(settings: Any) -> RetrySettings:
    """`RetrySettings` from a policy's retry block (None: the defaults)."""
    if settings is None:
        return RetrySettings()
    return RetrySettings(
        attempts=settings.attempts,
        initial_delay=settings.initial_delay,
        backoff=settings.backoff,
        max_delay=settings.max_delay,
        jitter=0.1 if settings.jitter else 0.0,
    )
