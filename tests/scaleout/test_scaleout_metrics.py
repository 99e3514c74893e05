"""`GET /podium/metrics` and `podium status` on two engine processes: runs, gates and
spending of a tenant's runs; dead letters and open breakers per tenant."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg
import pytest
from langgraph_sdk import get_sync_client

import podium
from podium.cli import main
from podium.server import sign_token
from podium.status import parse_metrics
from tests.helpers import fail_a_task

from .conftest import TOKEN_SECRET

pytestmark = pytest.mark.scaleout

OPS = "ops-key"


def metrics(url: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{url}/podium/metrics", headers=headers, timeout=30)


def test_metrics_need_an_operator(cluster) -> None:
    url = cluster.instances[0].url
    assert metrics(url).status_code == 401
    refused = metrics(url, **{"x-api-key": "acme-editor-key"})
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]
    answer = metrics(url, **{"x-api-key": OPS})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE podium_runs_in_flight gauge" in answer.text


def test_metrics_count_a_tenants_runs_gates_and_spending_on_every_instance(cluster, capsys) -> None:
    a, b = cluster.instances[:2]
    tenant = f"m-{uuid.uuid4().hex[:8]}"
    token = sign_token(TOKEN_SECRET, tenant_id=tenant, identity="mia", roles=["editor"])
    api = get_sync_client(url=a.url, headers={"Authorization": f"Bearer {token}"})
    threads = [api.threads.create()["thread_id"] for _ in range(4)]
    for thread in threads:
        api.runs.create(thread, "slow_brief", input={"goal": "Write a brief on heat pumps"})

    # While they run, B counts them (queued or in flight) like A does.
    seen = 0.0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not seen:
        mine = parse_metrics(metrics(b.url, **{"x-api-key": OPS}).text).tenant(tenant)
        seen = mine.runs_queued + mine.runs_in_flight
    assert 1 <= seen <= 4

    deadline = time.monotonic() + 60
    while any(api.threads.get(t)["status"] != "interrupted" for t in threads):
        assert time.monotonic() < deadline, "runs did not reach their gates"
        time.sleep(0.3)
    for instance in (a, b):
        mine = parse_metrics(metrics(instance.url, **{"x-api-key": OPS}).text).tenant(tenant)
        assert (mine.runs_queued, mine.runs_in_flight, mine.gates_waiting) == (0, 0, 4)
        assert (mine.dead_letters, mine.breakers_open) == (0, 0)
        assert mine.spent_tokens > 0
    with psycopg.connect(cluster.podium_url) as db:
        (tokens,) = db.execute(
            "SELECT SUM(input_tokens + output_tokens) FROM podium_usage WHERE tenant_id = %s",
            (tenant,),
        ).fetchone()
    assert mine.spent_tokens == tokens

    # `podium status` prints the same numbers from the server.
    assert main(["status", "--server", b.url, "--key", OPS]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if tenant in line]
    cells = row.split()
    assert cells[:6] == [tenant, "0", "0", "4", "0", "0"], row
    assert cells[-1] == str(int(tokens))


def test_metrics_count_each_tenants_dead_letter_and_open_breaker(cluster, capsys, tmp_path) -> None:
    a, b = cluster.instances[:2]
    tenants = [f"f-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"]
    for tenant in tenants:
        # A task whose tool fails: one dead letter, and the tool's breaker (the tenant's
        # own) open, in the database every process shares.
        fail_a_task(cluster.podium_url, tenant, ["fetch_feed"], tmp_path)

    for instance in (a, b):
        text = metrics(instance.url, **{"x-api-key": OPS}).text
        for tenant in tenants:
            assert f'podium_dead_letters{{tenant="{tenant}"}} 1.0' in text
            assert f'podium_breakers_open{{tenant="{tenant}"}} 1.0' in text
            mine = parse_metrics(text).tenant(tenant)
            assert (mine.runs_queued, mine.runs_in_flight, mine.gates_waiting) == (0, 0, 0)
    assert main(["status", "--server", b.url, "--key", OPS]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for tenant in tenants:
        assert rows[tenant][:6] == [tenant, "0", "0", "0", "1", "1"], rows[tenant]

    # A discarded letter no longer waits: its tenant's count drops, the other's stays.
    with podium.open_runtime(cluster.podium_url) as rt:
        [letter] = rt.services.dead_letters.list(tenants[0])
        rt.services.dead_letters.discard(letter.id, tenants[0], by="olga", reason="feed retired")
    text = metrics(a.url, **{"x-api-key": OPS}).text
    assert f'podium_dead_letters{{tenant="{tenants[0]}"}} 0.0' in text
    assert f'podium_dead_letters{{tenant="{tenants[1]}"}} 1.0' in text
    assert f'podium_breakers_open{{tenant="{tenants[0]}"}} 1.0' in text


def test_podium_status_without_a_credential_says_what_to_pass(cluster, capsys) -> None:
    assert main(["status", "--server", cluster.instances[0].url]) == 2
    assert "needs a credential" in capsys.readouterr().err
    assert main(["status", "--server", cluster.instances[0].url, "--key", "acme-editor-key"]) == 2
    assert "403" in capsys.readouterr().err
