"""How long a provider asks to be left alone: the `Retry-After` of a 429 or 503 reply."""

from __future__ import annotations

import email.utils
import time

#: Longest wait a `Retry-After` may impose; beyond it the call fails (or falls back) now.
MAX_RETRY_AFTER = 120.0


def retry_after(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the provider asked to wait before the next try, or None when it did not.

    Reads `retry-after-ms` (OpenAI) or `Retry-After` (seconds, or an HTTP date) from the
    response of an SDK error (`exc.response.headers`), capped at `MAX_RETRY_AFTER`.
    """
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return _capped(float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _capped(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return _capped(when - (time.time() if now is None else now))


def _capped(seconds: float) -> float | None:
    if seconds != seconds or seconds < 0:  # NaN or in the past: no wait asked for
        return None
    return min(seconds, MAX_RETRY_AFTER)
