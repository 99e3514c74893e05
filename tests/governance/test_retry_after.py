"""Retry-After of a provider's error: seconds, milliseconds, HTTP dates, and nonsense."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from podium.governance.recovery import RetrySettings, retry_call
from podium.governance.retry_after import MAX_RETRY_AFTER, retry_after

NOW = 1_800_000_000.0


class ProviderError(Exception):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(f"status {status}")
        self.status_code = status
        self.response = httpx.Response(status, headers=headers)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": "3600"}, MAX_RETRY_AFTER),
        ({"retry-after": "-4"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_the_providers_header(headers, seconds):
    assert retry_after(ProviderError(429, headers), now=NOW) == seconds


def test_an_error_without_a_response_asks_for_no_wait():
    assert retry_after(TimeoutError("slow")) is None


def test_retry_waits_at_least_what_the_provider_asked():
    waits: list[float] = []
    errors = [ProviderError(503, {"retry-after": "4"})]

    def call() -> str:
        if errors:
            raise errors.pop()
        return "ok"

    settings = RetrySettings(attempts=2, initial_delay=0.5, jitter=0.0)
    assert retry_call(call, settings, sleep=waits.append) == "ok"
    assert waits == [4.0]
