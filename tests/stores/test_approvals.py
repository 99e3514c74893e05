"""The approvals index on every back end: which of a thread's gates count as open."""

from __future__ import annotations

import time

from podium.gates.request import Decision, GateRequest
from podium.stores.approvals import Approvals


def _request(gate_id: str, thread: str, tenant: str) -> GateRequest:
    return GateRequest(
        gate_id=gate_id,
        kind="tool",
        tenant_id=tenant,
        workflow="w",
        thread_id=thread,
        tool="publish",
        requested_at=time.time(),
    )


def test_a_new_round_abandons_open_gates_and_a_gate_raised_again_is_open_again(db, tenant):
    approvals = Approvals(db)
    for gate_id in ("g-old1", "g-old2", "g-done"):
        approvals.open(_request(f"{gate_id}-{tenant}", "t1", tenant))
    approvals.open(_request(f"g-other-{tenant}", "t2", tenant))
    approvals.claim(f"g-done-{tenant}", tenant, Decision(decision="approve"), "ed")
    assert approvals.open_on_thread("t1", tenant) == 2

    approvals.abandon_open("t1", tenant)
    assert approvals.open_on_thread("t1", tenant) == 0
    assert approvals.open_on_thread("t2", tenant) == 1  # another thread keeps its gate
    assert [r.gate_id for r in approvals.pending(tenant)[0]] == [f"g-other-{tenant}"]
    assert approvals.get(f"g-done-{tenant}", tenant).status == "decided"

    # A fork of the thread back to where the gate stood raises it again: open again.
    approvals.open(_request(f"g-old1-{tenant}", "t1", tenant))
    assert approvals.get(f"g-old1-{tenant}", tenant).status == "pending"
    assert approvals.open_on_thread("t1", tenant) == 1
