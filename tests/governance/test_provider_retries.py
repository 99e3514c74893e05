"""Provider retries: Retry-After honoured, 4xx other than 408/409/429 final, one retry budget."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from podium.governance.recovery import (
    RetrySettings,
    classify,
    describe,
    retry_after,
    retry_call,
)
from podium.models import init_options


class APIStatusError(Exception):
    """Shaped as openai's and anthropic's: `status_code` and the httpx `response`."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        request = httpx.Request("POST", "https://api.example.com/v1/chat")
        self.response = httpx.Response(status, headers=headers or {}, request=request)
        self.status_code = status
        super().__init__(f"Error code: {status}")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (408, "transient"),
        (409, "transient"),
        (422, "permanent"),
        (429, "transient"),
        (500, "transient"),
        (503, "transient"),
        (529, "transient"),
    ],
)
def test_which_statuses_are_retried(status, expected):
    assert classify(APIStatusError(status)) == expected


def test_retry_after_headers():
    assert retry_after(APIStatusError(503, {"Retry-After": "1"})) == 1.0
    assert retry_after(APIStatusError(429, {"retry-after-ms": "1500"})) == 1.5
    # retry-after-ms is the more precise of the two when both are sent.
    assert retry_after(APIStatusError(429, {"retry-after-ms": "250", "retry-after": "1"})) == 0.25
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after(APIStatusError(503, {"Retry-After": date})) <= 31
    assert retry_after(APIStatusError(503, {"Retry-After": "soon"})) is None
    assert retry_after(APIStatusError(503)) is None
    assert retry_after(ValueError("no response")) is None


def _run(errors: list[Exception], settings: RetrySettings) -> tuple[list[float], int]:
    waits: list[float] = []
    calls = []

    def call():
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "ok"

    assert retry_call(call, settings, sleep=waits.append) == "ok"
    return waits, len(calls)


def test_a_503_with_retry_after_waits_as_asked():
    settings = RetrySettings(attempts=3, initial_delay=0.5, jitter=0.0)
    waits, calls = _run([APIStatusError(503, {"Retry-After": "1"})], settings)
    assert waits == [1.0] and calls == 2


def test_retry_after_never_shortens_the_backoff_and_is_capped_by_max_delay():
    settings = RetrySettings(attempts=3, initial_delay=2.0, max_delay=5.0, jitter=0.0)
    assert _run([APIStatusError(429, {"retry-after-ms": "10"})], settings)[0] == [2.0]
    assert _run([APIStatusError(429, {"Retry-After": "3600"})], settings)[0] == [5.0]


def test_a_client_error_is_not_retried():
    with pytest.raises(APIStatusError):
        _run([APIStatusError(400), APIStatusError(400)], RetrySettings(attempts=3))


@pytest.mark.parametrize(
    ("provider", "options"),
    [
        ("openai", {"max_retries": 0, "stream_usage": True}),
        ("anthropic", {"max_retries": 0}),
        ("ollama", {}),
    ],
)
def test_podium_turns_the_sdk_retries_off_for_providers_that_have_them(provider, options):
    # Each podium attempt is one request: the SDK's own retries would multiply them.
    # OpenAI's streamed replies carry usage only when asked for (any OPENAI_BASE_URL).
    assert init_options(provider) == options


def test_a_transient_failure_is_described_with_the_cause_that_says_more():
    try:
        try:
            raise OSError("peer closed connection without sending complete message body")
        except OSError as cut:
            raise ConnectionError("Connection error.") from cut
    except ConnectionError as exc:
        said = describe(exc)
    assert said == (
        "ConnectionError: Connection error. "
        "(OSError: peer closed connection without sending complete message body)"
    )
    # A permanent failure says what it says; its cause is a detail the message already holds.
    try:
        try:
            raise KeyError("x")
        except KeyError as inner:
            raise ValueError("bad value 'x'") from inner
    except ValueError as exc:
        assert describe(exc) == "ValueError: bad value 'x'"
