"""Webhook triggers: `POST /triggers/{workflow}` starts a run for the signing tenant.

A sender signs `timestamp + "." + body` with HMAC-SHA256 under its tenant's secret
(`PODIUM_WEBHOOK_SECRETS="tenant=secret;..."`) and sends

    x-podium-tenant: acme
    x-podium-timestamp: 1767225600          (seconds since the epoch)
    x-podium-signature: sha256=<hex digest>
    {"goal": "...", "thread_id": null, "webhook": "https://example.com/done"}

The request is refused with 401 for a missing, unknown or wrong signature, a timestamp
outside the window (300 s either way) or a signature seen before (replay); 404 for an
unknown workflow or another tenant's thread; 403 for new input on a thread waiting at a
gate that needs roles (a webhook has none); 422 for a malformed body. Otherwise the run
is started on the server (in-process client, tenant stamped) and the answer is 202 with
the thread and run ids. `webhook` is the server's completion callback of the run; a URL
the server's webhook policy refuses (or cannot resolve) is a 422. A request refused after
its signature was checked gives the signature back, so its retry is answered the same.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any
from uuid import UUID

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError, LangGraphError, NotFoundError
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse

from podium.server._credentials import (
    SIGNATURE_HEADER,
    WINDOW,
    WebhookRefused,
    parse_webhook_secrets,
    verify_webhook,
)
from podium.server._replay import ReplayGuard
from podium.server._runtime import server_runtime

#: Largest accepted body, in bytes.
MAX_BODY = 1 << 20


class TriggerPayload(BaseModel):
    """The body of a trigger request.

    Attributes:
        goal: What the workflow should do.
        thread_id: A thread of the tenant to continue; None starts a new thread.
        webhook: URL the server calls when the run finishes (the run's `webhook`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    goal: str = Field(min_length=1, max_length=20_000)
    thread_id: UUID | None = None
    webhook: HttpUrl | None = None

    @field_validator("goal")
    @classmethod
    def _no_nul(cls, goal: str) -> str:
        # Text columns (PostgreSQL's) cannot hold NUL: the run would be accepted with a 202
        # and then fail on it, so the body is refused here as malformed.
        if "\x00" in goal:
            raise ValueError("goal contains a NUL character")
        return goal


@functools.lru_cache(maxsize=4)
def _secrets(text: str | None) -> dict[str, bytes]:
    return parse_webhook_secrets(text)


# Fail at start-up, not on the first request, when PODIUM_WEBHOOK_SECRETS is malformed.
_secrets(os.environ.get("PODIUM_WEBHOOK_SECRETS"))


@functools.cache
def _guard() -> ReplayGuard:
    return ReplayGuard(server_runtime().db, window=WINDOW)


@functools.cache
def _client() -> Any:
    # No URL: the server's in-process client. It skips authentication, so this module
    # stamps the tenant itself.
    return get_client(api_key=None)


def error(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A JSON error body like the server's own (`{"detail": ...}`)."""
    return JSONResponse({"detail": detail, **extra}, status_code=status)


async def trigger(request: Request) -> JSONResponse:
    """`POST /triggers/{workflow}`: start a run of `workflow` for the signing tenant.

    The part below the line is the route's OpenAPI description (YAML).
    ---
    summary: Start a workflow run from a signed webhook
    tags: [podium]
    parameters:
      - {name: workflow, in: path, required: true, schema: {type: string}}
      - {name: x-podium-tenant, in: header, required: true, schema: {type: string}}
      - {name: x-podium-timestamp, in: header, required: true, schema: {type: integer}}
      - name: x-podium-signature
        in: header
        required: true
        description: sha256=HMAC-SHA256(tenant secret, timestamp + "." + body), hex
        schema: {type: string}
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [goal]
            additionalProperties: false
            properties:
              goal: {type: string}
              thread_id: {type: string, format: uuid}
              webhook: {type: string, format: uri}
    responses:
      "202": {description: "Run started: thread_id, run_id, workflow, status"}
      "401": {description: Unsigned, wrongly signed, expired or replayed request}
      "404": {description: Unknown workflow, or a thread of another tenant}
      "422": {description: Malformed body}
    """
    workflow = request.path_params["workflow"]
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:  # refused before it is read
        return error(413, f"body larger than {MAX_BODY} bytes")
    body = await request.body()
    if len(body) > MAX_BODY:
        return error(413, f"body larger than {MAX_BODY} bytes")
    try:
        secrets = _secrets(os.environ.get("PODIUM_WEBHOOK_SECRETS"))
        tenant = verify_webhook(secrets, request.headers, body, now=time.time())
    except WebhookRefused as exc:
        return error(401, str(exc))
    if not await _workflow_exists(workflow):
        return error(404, f"unknown workflow {workflow!r}")
    try:
        payload = TriggerPayload.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return error(422, "malformed body", errors=errors)
    services = server_runtime().services
    signature = request.headers[SIGNATURE_HEADER].strip()
    guard = await services.run_sync(_guard)
    if not await services.run_sync(guard.first_use, tenant, signature):
        return error(401, "replayed request: this signature was used before")
    try:
        answer = await _start(workflow, tenant, payload)
    except APIStatusError as exc:
        answer = error(exc.response.status_code, _detail(exc))
    if answer.status_code != 202:
        # Nothing was started: a retry of the same request deserves the same answer.
        await services.run_sync(guard.forget, tenant, signature)
    return answer


async def _workflow_exists(workflow: str) -> bool:
    try:
        found = await _client().assistants.search(
            graph_id=workflow, metadata={"created_by": "system"}, limit=1
        )
    except NotFoundError:
        return False
    return bool(found)


async def _start(workflow: str, tenant: str, payload: TriggerPayload) -> JSONResponse:
    client = _client()
    stamp = {"tenant_id": tenant, "trigger": "webhook"}
    user_id = f"webhook:{tenant}"
    if payload.thread_id is not None:
        thread_id = str(payload.thread_id)
        try:
            thread = await client.threads.get(thread_id)
        except (LangGraphError, httpx.HTTPError):
            thread = None
        if thread is None or (thread.get("metadata") or {}).get("tenant_id") != tenant:
            return error(404, f"thread {thread_id!r} not found")
        # New input on a thread waiting at a gate would step past the gate; a webhook has
        # no roles, like any caller without the gate's roles (see `podium.server.auth`).
        from podium.server.auth import roles_refusal, thread_gates

        problem = roles_refusal(user_id, (), thread_gates(thread), "run new input on")
        if problem:
            return error(403, problem)
        created = False
    else:
        thread_id = str((await client.threads.create(metadata=stamp))["thread_id"])
        created = True
    try:
        run = await client.runs.create(
            thread_id,
            workflow,
            input={"goal": payload.goal},
            metadata=stamp,
            # No authenticated user on this path: the context names the tenant.
            context={"tenant_id": tenant, "user_id": user_id, "roles": []},
            webhook=str(payload.webhook) if payload.webhook else None,
        )
    except APIStatusError:
        if created:  # e.g. a callback URL the server's webhook policy refuses
            await client.threads.delete(thread_id)
        raise
    return JSONResponse(
        {
            "thread_id": thread_id,
            "run_id": run["run_id"],
            "workflow": workflow,
            "status": run["status"],
        },
        status_code=202,
    )


def _detail(exc: APIStatusError) -> str:
    try:
        return str(exc.response.json().get("detail") or exc)
    except ValueError:
        return str(exc)
