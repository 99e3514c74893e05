"""The chat app's server client (`RemoteWorkbench`) across two engine processes.

This engine answers `get_state` of a thread it does not have with 200 and an empty state,
so the client must ask `threads.get` whether a new thread exists before creating it.
"""

from __future__ import annotations

import pytest

from podium.graphs.research_brief import DEMO_GOAL
from podium.ui import decision_for
from podium.ui.remote import RemoteWorkbench
from podium.ui.settings import AppConfig

pytestmark = pytest.mark.scaleout


def test_a_new_thread_started_on_a_is_decided_on_b(cluster) -> None:
    a, b = cluster.instances[:2]
    on_a = RemoteWorkbench(AppConfig(server_url=a.url, server_key="acme-editor-key"))
    on_b = RemoteWorkbench(AppConfig(server_url=b.url, server_key="acme-editor-key"))
    thread_id = on_a.new_thread_id("research_brief")
    outcome = on_a.send("research_brief", thread_id, DEMO_GOAL, on_a.identity.context)
    assert (outcome.error, outcome.status, outcome.waiting) == (None, "running", True)

    (card,) = on_b.view("research_brief", thread_id).cards
    decision = decision_for(card, "approve")
    done = on_b.decide("research_brief", thread_id, card.gate_id, decision, on_b.identity.context)
    assert (done.error, done.status, done.waiting) == (None, "completed", False)
    assert not on_a.view("research_brief", thread_id).cards
