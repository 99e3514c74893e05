"""A scripted OpenAI-compatible server on 127.0.0.1 for tests of real provider clients.

It speaks the wire protocol of `POST /v1/chat/completions` as `langchain-openai` uses it:
plain and streamed (SSE) replies, tool calls, `response_format` JSON schemas, usage with
cached and reasoning tokens, error statuses with headers, and a stream cut mid-answer.
Each model has its own script, answered in order; a request beyond the script is answered
418 (which the client does not retry) and recorded, and `assert_consumed()` fails on it
and on steps left over, so a test cannot pass while using the server more or less than
it says.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_openai import ChatOpenAI


@dataclass
class Reply:
    """A completion: text, tool calls ({"name", "args"}), and the usage to report."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None  # prompt, completion, cached, reasoning


@dataclass
class Structured:
    """A value answered the way the request asks for structured output: as JSON content
    under `response_format`, as a call of the request's only tool under tool calling, or
    as JSON text when the request asks for neither. `expect` says which it must be."""

    value: dict[str, Any]
    expect: str  # "json_schema", "tool" or "text"


@dataclass
class Fail:
    """An error reply: a status, its headers and an OpenAI error body (message, type, code)."""

    status: int
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    type: str = "scripted"


@dataclass
class Cut:
    """A streamed reply that stops after `content` without finishing (connection closed)."""

    content: str


Step = Reply | Structured | Fail | Cut | Callable[[dict[str, Any]], Any]


class FakeOpenAI:
    """The server. Use as a context manager; `url` is the base URL for `ChatOpenAI`."""

    def __init__(
        self, scripts: dict[str, list[Step]], *, ttft: float = 0.0, token_delay: float = 0.0
    ) -> None:
        self.scripts = {model: list(steps) for model, steps in scripts.items()}
        self.requests: dict[str, list[dict[str, Any]]] = {m: [] for m in scripts}
        self.overused: list[str] = []
        self.ttft = ttft
        self.token_delay = token_delay
        #: When each streamed chunk left the server (time.monotonic), per model, in order.
        self.sent: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, model: str, steps: list[Step]) -> None:
        """Add steps to a model's script (a server shared by several tests)."""
        with self._lock:
            self.scripts.setdefault(model, []).extend(steps)
            self.requests.setdefault(model, [])

    def assert_consumed(self) -> None:
        """Fail when a model was asked more often than scripted or left steps unused."""
        if self.overused:
            raise AssertionError(f"fake OpenAI server used beyond its script: {self.overused}")
        left = {m: len(s) - len(self.requests[m]) for m, s in self.scripts.items()}
        left = {m: n for m, n in left.items() if n}
        if left:
            raise AssertionError(f"fake OpenAI server has unused steps per model: {left}")

    def next_step(self, body: dict[str, Any]) -> Step | None:
        model = str(body.get("model"))
        with self._lock:
            script, seen = self.scripts.get(model), self.requests.setdefault(model, [])
            if script is None or len(seen) >= len(script):
                self.overused.append(f"{model} request {len(seen) + 1}")
                return None
            seen.append(body)
            step = script[len(seen) - 1]
        return step(body) if callable(step) else step


def chat(fake: FakeOpenAI, model: str = "gpt-4o-mini", **kwargs: Any) -> ChatOpenAI:
    """`ChatOpenAI` on the fake server. The SDK's own retries are off: podium's governor
    retries, as the tests check."""
    return ChatOpenAI(model=model, base_url=fake.url, api_key="sk-test", max_retries=0, **kwargs)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            if not self.path.endswith("/chat/completions"):
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            step = fake.next_step(body)
            if step is None:
                return self._json(418, {"error": {"message": "beyond the fake server's script"}})
            if isinstance(step, Fail):
                return self._json(
                    step.status,
                    {"error": {"message": step.message, "type": step.type, "code": step.code}},
                    step.headers,
                )
            reply = _as_reply(step, body)
            if isinstance(reply, str):  # a mismatch between script and request
                fake.overused.append(reply)
                return self._json(418, {"error": {"message": reply}})
            if body.get("stream"):
                return self._stream(body, reply)
            time.sleep(fake.ttft)
            return self._json(200, _completion(body, reply))

        def _json(self, status: int, data: dict, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _stream(self, body: dict[str, Any], reply: Reply | Cut) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "model": body["model"]}
            time.sleep(fake.ttft)
            sent = fake.sent.setdefault(body["model"], [])
            for i, delta in enumerate(_deltas(reply)):
                if i and fake.token_delay:
                    time.sleep(fake.token_delay)
                self._chunk({**base, "object": "chat.completion.chunk", "choices": [delta]})
                sent.append(time.monotonic())
            if isinstance(reply, Cut):
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # mid-answer: no [DONE], no final chunk
                return
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = _usage(body, reply)
                self._chunk({**base, "object": "chat.completion.chunk", "choices": [], **usage})
            self._send(b"data: [DONE]\n\n")
            self._send(b"")

        def _chunk(self, data: dict) -> None:
            self._send(f"data: {json.dumps(data)}\n\n".encode())

        def _send(self, raw: bytes) -> None:
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()

    return Handler


def _as_reply(step: Step, body: dict[str, Any]) -> Reply | Cut | str:
    """The reply a step gives to this request, or why the request does not fit it."""
    if not isinstance(step, Structured):
        return step  # type: ignore[return-value]
    response_format = body.get("response_format") or {}
    tools = body.get("tools") or []
    if response_format.get("type") == "json_schema":
        asked = "json_schema"
    elif tools:
        asked = "tool"
    else:
        asked = "text"
    if asked != step.expect:
        return f"expected structured output as {step.expect!r}, the request asked {asked!r}"
    if asked == "tool":
        (tool,) = tools
        return Reply(tool_calls=[{"name": tool["function"]["name"], "args": step.value}])
    return Reply(content=json.dumps(step.value))


def _usage(body: dict[str, Any], reply: Reply | Cut) -> dict[str, Any]:
    given = (reply.usage if isinstance(reply, Reply) else None) or {}
    prompt = given.get("prompt", max(1, len(json.dumps(body.get("messages"))) // 4))
    text = reply.content + json.dumps(getattr(reply, "tool_calls", []))
    completion = given.get("completion", max(1, len(text) // 4))
    return {
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": given.get("cached", 0)},
            "completion_tokens_details": {"reasoning_tokens": given.get("reasoning", 0)},
        }
    }


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:10]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in reply.tool_calls
    ]


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        **_usage(body, reply),
    }


def _deltas(reply: Reply | Cut) -> list[dict[str, Any]]:
    """The streamed pieces of a reply: its text word by word, then its tool calls."""
    words = reply.content.split(" ") if reply.content else []
    deltas = [
        {"index": 0, "delta": {"role": "assistant", "content": w if i == 0 else " " + w}}
        for i, w in enumerate(words)
    ]
    if isinstance(reply, Cut):
        return deltas
    calls = _tool_calls(reply)
    if calls:
        deltas.append(
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "tool_calls": [{"index": i, **c} for i, c in enumerate(calls)],
                },
            }
        )
    finish = "tool_calls" if calls else "stop"
    deltas.append({"index": 0, "delta": {}, "finish_reason": finish})
    return deltas
