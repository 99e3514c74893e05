"""Two `langhost serve` processes on a fresh PostgreSQL database and a Redis db of their own.

Started once per session (see `tests/scaleout/cluster.py` for the engine and its venv).
Tenants: acme (ana: editor, bob: no role), globex (gus: editor), initech (ivy: editor).
Without PostgreSQL or Redis the tests skip, or fail when CI is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.scaleout.cluster import (
    DEFAULT_ADMIN_URL,
    DEFAULT_REDIS,
    Cluster,
    ClusterError,
    engine_env,
    engine_venv,
    fresh_databases,
    redis_reachable,
)

API_KEYS = {
    "acme-editor-key": ("acme", "ana", ("editor",)),
    "acme-viewer-key": ("acme", "bob", ()),
    "globex-editor-key": ("globex", "gus", ("editor",)),
    "initech-editor-key": ("initech", "ivy", ("editor",)),
    "ops-key": ("ops", "olga", ("operator",)),
}
TOKEN_SECRET = "scaleout-token-secret"
#: Seconds between the engine's run heartbeats; a dead process's runs are reclaimed after
#: about two of them plus one sweep.
HEARTBEAT = 2.0
#: Runs one engine process takes at once (N_JOBS_PER_WORKER).
JOBS_PER_PROCESS = 10
#: The scale-out tests' own Redis db (PODIUM_TEST_REDIS_DB overrides).
REDIS_DB = int(os.environ.get("PODIUM_TEST_REDIS_DB", "13"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the scale-out tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two engine processes, A and B, torn down (process groups) after the session."""
    admin = os.environ.get("PODIUM_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL
    redis = f"{os.environ.get('PODIUM_TEST_REDIS_URL') or DEFAULT_REDIS}/{REDIS_DB}"
    if reason := redis_reachable(redis):
        _unavailable(reason)
    workdir = tmp_path_factory.mktemp("scaleout")
    try:
        venv = engine_venv(workdir / "engine-build.log")
    except ClusterError as exc:
        _unavailable(str(exc))
    try:
        databases = fresh_databases(admin, "engine", "podium")
        engine_db, podium_db = databases.__enter__()
    except Exception as exc:  # psycopg.Error, OSError: no server
        _unavailable(f"PostgreSQL not reachable at {admin}: {exc}")
    running = Cluster(
        venv,
        workdir,
        engine_env(
            database_uri=engine_db,
            podium_url=podium_db,
            redis_url=redis,
            api_keys=API_KEYS,
            token_secret=TOKEN_SECRET,
            heartbeat=HEARTBEAT,
            jobs_per_process=JOBS_PER_PROCESS,
        ),
    )
    try:
        running.start(2)
        yield running
    finally:
        running.stop()
        databases.__exit__(None, None, None)


def client(url: str, key: str) -> Any:
    return get_sync_client(url=url, api_key=key)


def status_of(error: BaseException) -> int:
    assert isinstance(error, httpx.HTTPStatusError), error
    return error.response.status_code
