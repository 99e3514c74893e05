"""Embedded tenant isolation: two tenants share one database; neither sees the other's rows.

Each tenant runs the demo (threads, approvals, audit, usage, budgets, rate buckets, tool
effects) and a workflow whose task is dead-lettered; then every podium store is read as
each tenant.
"""

from __future__ import annotations

import pytest
from langchain_core.tools import tool

import podium
from podium import AgentSpec, Plan, PlannedTask, RunContext
from podium.errors import DeadLetterNotFound, ThreadNotFound
from podium.gates.decision import pending_gates
from tests.helpers import allowing, run_demo


def _failing_workflow():
    @tool
    def explode(x: str) -> str:
        """Always fails."""
        raise ValueError(f"cannot handle {x}")

    from podium.testing import ScriptedChatModel, tool_call

    model = ScriptedChatModel(responses=[tool_call("explode", {"x": "1"})])
    return podium.build_workflow(
        [AgentSpec(name="fragile", tools=[explode], model=model)],
        name="fragile_flow",
        supervisor=Plan(tasks=[PlannedTask(id="t1", agent="fragile", instruction="x")]),
        policies=allowing(fragile=["explode"]),
    )


@pytest.fixture
def two_tenants(db_url, tenant):
    a, b = f"{tenant}-a", f"{tenant}-b"
    with podium.open_runtime(db_url) as rt:
        app = rt.compile(podium.build_research_brief())
        for who in (a, b):
            run_demo(app, f"{who}-done", tenant=who)
            # A second demo left waiting at its publish gate.
            app.invoke(
                {"goal": "Write a brief on rooftop solar"},
                {"configurable": {"thread_id": f"{who}-gated"}},
                context=RunContext(tenant_id=who),
            )
            assert pending_gates(app, f"{who}-gated")
            rt.compile(_failing_workflow()).invoke(
                {"goal": "g"},
                {"configurable": {"thread_id": f"{who}-dead"}},
                context=RunContext(tenant_id=who),
            )
        rt.services.flush()
        yield rt, a, b


def test_threads_are_per_tenant(two_tenants):
    rt, a, b = two_tenants
    assert {t.thread_id for t in rt.threads.list(tenant_id=a)} == {
        f"{a}-done",
        f"{a}-gated",
        f"{a}-dead",
    }
    with pytest.raises(ThreadNotFound):
        rt.threads.get(f"{a}-done", tenant_id=b)


def test_approvals_inbox_is_per_tenant(two_tenants):
    rt, a, b = two_tenants
    pending_a, _ = rt.services.approvals.pending(a)
    assert [g.thread_id for g in pending_a] == [f"{a}-gated"]
    gate = pending_a[0].gate_id
    assert rt.services.approvals.get(gate, b) is None


def test_audit_chains_are_per_tenant(two_tenants):
    rt, a, b = two_tenants
    events_a = rt.services.audit.events(a)
    assert events_a and {e.tenant_id for e in events_a} == {a}
    assert rt.services.audit.timeline(f"{a}-done", b) == []
    assert rt.services.audit.verify(a).ok and rt.services.audit.verify(b).ok
    assert rt.services.audit.head(a).hash != rt.services.audit.head(b).hash


def test_usage_ledger_is_per_tenant(two_tenants):
    rt, a, b = two_tenants
    assert {row.key for row in rt.services.ledger.totals(a, by="thread")} == {
        f"{a}-done",
        f"{a}-gated",
        f"{a}-dead",
    }
    assert rt.services.ledger.for_thread(f"{a}-done", b) == []


def test_dead_letters_are_per_tenant(two_tenants):
    rt, a, b = two_tenants
    [letter] = rt.services.dead_letters.list(a)
    assert letter.thread_id == f"{a}-dead"
    with pytest.raises(DeadLetterNotFound):
        rt.services.dead_letters.get(letter.id, b)


def test_tool_effects_are_per_tenant(two_tenants):
    rt, a, b = two_tenants
    effects_a = rt.services.effects.list(a)
    assert effects_a and {e.key.thread_id for e in effects_a} == {f"{a}-done"}
    assert all(e.key.tenant_id == a for e in effects_a)
    assert f"{a}-done" not in {e.key.thread_id for e in rt.services.effects.list(b)}


def test_budgets_are_per_tenant(two_tenants):
    rt, a, b = two_tenants
    # The shipped policy budgets every run; each tenant's run spent under its own key.
    key = f"run:{a}-done:1"
    assert rt.services.budgets.spent(a, key, "tokens") > 0
    assert rt.services.budgets.spent(b, key, "tokens") == 0


def test_rate_buckets_are_per_tenant(two_tenants):
    rt, a, b = two_tenants
    rows = rt.db.query(
        "SELECT DISTINCT tenant_id, bucket_key FROM podium_rate_buckets WHERE tenant_id IN (?, ?)",
        (a, b),
    )
    assert {r["tenant_id"] for r in rows} == {a, b}
    # Every bucket belongs to its tenant and names only that tenant.
    for row in rows:
        other = b if row["tenant_id"] == a else a
        assert row["tenant_id"] in row["bucket_key"] and other not in row["bucket_key"]


def test_breakers_scoped_to_a_tenant_stay_with_it(two_tenants):
    rt, a, b = two_tenants
    from podium.stores.breakers.store import BreakerKeyError, BreakerSettings, breaker_key

    key = breaker_key("tool", "search_corpus", tenant_id=a)
    rt.services.breakers.record_failure(key, BreakerSettings(), a, "boom")
    assert key in {info.key for info in rt.services.breakers.list(a)}
    assert key not in {info.key for info in rt.services.breakers.list(b)}
    with pytest.raises(BreakerKeyError):
        rt.services.breakers.record_failure(key, BreakerSettings(), b, "intrusion")


def test_policies_and_data_scopes_follow_the_tenant(tmp_path):
    from podium.policies import CallScope, evaluate_data_scope, evaluate_tool, load_policies

    path = tmp_path / "p.yaml"
    path.write_text(
        "global:\n  tools: {allow: []}\n  data_scopes: []\n"
        "tenants:\n  acme:\n    tools: {allow: [search_corpus]}\n"
        "    data_scopes: ['store:{tenant}/*']\n"
    )
    policy = load_policies(path)
    acme, globex = CallScope(tenant="acme"), CallScope(tenant="globex")
    assert evaluate_tool(policy, acme, "search_corpus").allowed
    assert not evaluate_tool(policy, globex, "search_corpus").allowed
    assert evaluate_data_scope(policy, acme, "store:acme/notes").allowed
    assert not evaluate_data_scope(policy, acme, "store:globex/notes").allowed
