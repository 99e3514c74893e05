"""Context-window refusals (podium/governance/context_window.py): recognised in each
provider's words, reported as `ContextWindowExceeded` with the model's window."""

from __future__ import annotations

import httpx
import pytest
from langchain_core.exceptions import ContextOverflowError
from langchain_openai import ChatOpenAI

from podium.errors import ContextWindowExceeded
from podium.governance.context_window import explained, is_overflow, window_of
from podium.governance.recovery import classify
from podium.testing import ScriptedChatModel


class ProviderError(Exception):
    """Shaped as openai's and anthropic's status errors: status, response and body."""

    def __init__(self, status: int, body: object, text: str = "") -> None:
        request = httpx.Request("POST", "https://api.example.com/v1/messages")
        self.response = httpx.Response(status, request=request)
        self.status_code = status
        self.body = body
        super().__init__(text or f"Error code: {status} - {body}")


OPENAI = {
    "message": "This model's maximum context length is 128000 tokens. However, your "
    "messages resulted in 130500 tokens.",
    "type": "invalid_request_error",
    "code": "context_length_exceeded",
}
ANTHROPIC = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "prompt is too long: 208310 tokens > 200000 maximum",
    },
}
GOOGLE = {
    "message": "The input token count (1200000) exceeds the maximum number of tokens "
    "allowed (1048576).",
    "status": "INVALID_ARGUMENT",
}


@pytest.mark.parametrize(
    ("error", "overflow"),
    [
        (ProviderError(400, OPENAI), True),
        (ProviderError(400, ANTHROPIC, "Error code: 400"), True),  # only the body says it
        (ProviderError(400, GOOGLE), True),
        (ContextOverflowError("input exceeds the model's context limit"), True),
        (ProviderError(400, {"message": "messages: invalid role"}), False),
        (ProviderError(429, {"message": "maximum context length per minute"}), False),
        (ProviderError(500, OPENAI), False),  # a server error is retried, not explained
        (ValueError("plain bug"), False),
    ],
)
def test_which_errors_are_context_window_refusals(error, overflow):
    assert is_overflow(error) is overflow


def test_the_refusal_names_the_model_its_window_and_what_to_do():
    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test")
    exc = explained(ProviderError(400, OPENAI), model=model, label="gpt-4o-mini", agent="writer")
    assert isinstance(exc, ContextWindowExceeded)
    assert (exc.model, exc.agent, exc.window) == ("gpt-4o-mini", "writer", 128_000)
    assert "context window (128,000 tokens) of model 'gpt-4o-mini'" in str(exc)
    assert "resulted in 130500 tokens" in str(exc)  # the provider's own words
    assert "shorten" in str(exc) and "larger context window" in str(exc)
    assert classify(exc) == "permanent"
    assert not is_overflow(exc)  # explained once


def test_a_model_without_a_profile_is_named_without_a_window():
    model = ScriptedChatModel(responses=[])
    exc = explained(ProviderError(400, ANTHROPIC), model=model, label="claude", agent="a")
    assert isinstance(exc, ContextWindowExceeded) and exc.window is None
    assert "exceeds the context window of model 'claude'" in str(exc)
    assert "prompt is too long: 208310 tokens > 200000 maximum" in str(exc)
    assert window_of(model) is None


def test_other_errors_pass_through_unchanged():
    error = ProviderError(400, {"message": "messages: invalid role"})
    assert explained(error, model=None, label="m", agent="a") is error
