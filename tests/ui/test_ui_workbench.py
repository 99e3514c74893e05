"""podium.ui.workbench and podium.ui.actions: runs, gates and errors on a real SQLite runtime."""

from __future__ import annotations

import functools
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from podium.context import RunContext
from podium.errors import DatabaseError, UnknownWorkflowError
from podium.gates.request import Decision
from podium.graphs import build_workflow
from podium.graphs.research_brief import (
    DEMO_GOAL,
    build_research_brief,
    default_policy_path,
    research_agents,
)
from podium.ui import (
    AppConfig,
    ChatSession,
    Continue,
    Send,
    UserSettings,
    Workbench,
    apply_link,
    config_from_env,
    perform,
    trace_link,
)

EDITOR = RunContext(tenant_id="default", user_id="ed", roles=frozenset({"editor"}))
NOBODY = RunContext(tenant_id="default", user_id="guest")
WF = "research_brief"


@functools.cache
def _tight_policy() -> str:
    text = default_policy_path().read_text()
    text = text.replace("per_run: {tokens: 200000, usd: 1.00}", "per_run: {tokens: 300, usd: 1.00}")
    path = Path(tempfile.mkdtemp(prefix="podium-ui-")) / "tight.yaml"
    path.write_text(text)
    return str(path)


def tight_budget(model=None):
    """research_brief with a run budget of 300 tokens (the planner alone needs more)."""
    return build_research_brief(model, policies=_tight_policy())


def gone(model=None):
    """A workflow named "gone" (threads record the name), without policies or gates."""
    return build_workflow(research_agents(), name="gone", model=model)


@pytest.fixture
def bench(tmp_path):
    workbench = Workbench(
        AppConfig(
            database_url=f"sqlite:///{tmp_path / 'podium.db'}",
            workflows=f"tight_budget={__name__}:tight_budget",
        )
    )
    yield workbench
    workbench.close()


def _gate_id(bench: Workbench, thread: str) -> str:
    (card,) = bench.view(WF, thread).cards
    return card.gate_id


def test_a_goal_runs_to_the_gate_and_approval_finishes_it(bench):
    events: list[dict] = []
    out = bench.send(WF, "t1", DEMO_GOAL, NOBODY, on_event=events.append)
    assert out.ok and out.waiting and out.status == "running"
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and {"task_started", "task_finished"} <= set(kinds)
    view = bench.view(WF, "t1")
    assert [line.role for line in view.messages] == ["user"]
    assert view.cards[0].tool == "publish_report"
    assert {r.status for r in view.board} == {"completed", "waiting"}

    out = bench.decide(WF, "t1", _gate_id(bench, "t1"), Decision(decision="approve"), EDITOR)
    assert out.ok and not out.waiting and out.status == "completed"
    view = bench.view(WF, "t1")
    assert [line.role for line in view.messages] == ["user", "assistant"]
    assert "Publishing: published" in view.messages[-1].text
    assert {r.status for r in view.board} == {"completed"}
    assert all(r.tokens for r in view.board)


def test_reject_goes_back_to_the_agent_and_the_run_ends(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    decision = Decision(decision="reject", comment="not today")
    out = bench.decide(WF, "t1", _gate_id(bench, "t1"), decision, EDITOR)
    assert out.ok and out.status == "completed"
    answer = bench.view(WF, "t1").messages[-1].text
    assert "Rejected by ed: not today. The tool was not run." in answer


def test_a_follow_up_is_a_new_round_of_the_same_thread(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    bench.decide(WF, "t1", _gate_id(bench, "t1"), Decision(decision="approve"), EDITOR)
    out = bench.send(WF, "t1", "Now only grid storage", NOBODY)
    assert out.ok and out.waiting
    view = bench.view(WF, "t1")
    assert view.round == 2
    assert [line.text for line in view.messages if line.role == "user"] == [
        DEMO_GOAL,
        "Now only grid storage",
    ]
    again = bench.send(WF, "t1", "one more", NOBODY)
    assert again.waiting and "waiting for an approval" in again.error


def test_a_user_without_the_role_is_refused_and_the_gate_stays_open(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    gate = _gate_id(bench, "t1")
    out = bench.decide(WF, "t1", gate, Decision(decision="approve"), NOBODY)
    assert out.error.startswith("user 'guest' (roles: none) may not decide gate")
    assert bench.view(WF, "t1").waiting
    assert bench.decide(WF, "t1", gate, Decision(decision="approve"), EDITOR).ok


def test_an_edit_against_the_policy_is_noted_on_the_card(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    bad = Decision(decision="edit", args={"filename": "../escape.md", "content": "x"})
    bench.decide(WF, "t1", _gate_id(bench, "t1"), bad, EDITOR)
    (card,) = bench.view(WF, "t1").cards
    assert card.note and "filename" in card.note
    good = Decision(decision="edit", args={"filename": "edited.md", "content": "# Edited"})
    assert bench.decide(WF, "t1", card.gate_id, good, EDITOR).status == "completed"
    assert "published reports/edited.md" in bench.view(WF, "t1").messages[-1].text


def test_a_broken_page_stops_the_run_which_continues_from_its_checkpoint(bench):
    def crash(event):
        if event["event"] == "task_finished":
            raise RuntimeError("the page went away")

    out = bench.send(WF, "t1", DEMO_GOAL, NOBODY, on_event=crash)
    assert out.error.startswith("run stopped: RuntimeError: the page went away")
    assert "podium resume t1" in out.error
    assert bench.rt.threads.get("t1", tenant_id="default").status == "stopped"
    view = bench.view(WF, "t1")
    assert view.stalled and not view.waiting

    session = ChatSession(thread_id="t1", workflow=WF, tenant_id="default")
    out = perform(bench, session, Continue(), UserSettings(), WF)
    assert out.ok and out.waiting


def test_a_resume_cut_short_after_the_decision_continues_from_the_page(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    gate = _gate_id(bench, "t1")

    def crash(event):
        raise RuntimeError("tab closed")

    out = bench.decide(WF, "t1", gate, Decision(decision="approve"), EDITOR, on_event=crash)
    assert out.error and "tab closed" in out.error
    view = bench.view(WF, "t1")
    assert view.stalled and not view.waiting  # the decision reached the gate: not reopened
    session = ChatSession(thread_id="t1", workflow=WF, tenant_id="default")
    assert perform(bench, session, Continue(), UserSettings(), WF).status == "completed"
    assert "Publishing: published" in bench.view(WF, "t1").messages[-1].text
    assert bench.decide(WF, "t1", gate, Decision(decision="approve"), EDITOR).error


def test_budget_exceeded_comes_back_as_a_message(bench):
    out = bench.send("tight_budget", "t1", DEMO_GOAL, NOBODY)
    assert "budget" in out.error and "300 tokens" in out.error
    assert "raise the limit in the policy" in out.error


def test_unknown_workflow_and_model_are_messages(bench):
    out = bench.send("nope", "t1", DEMO_GOAL, NOBODY)
    # Other tests of the session may register workflows of their own: the list names them too.
    assert out.error.startswith("unknown workflow 'nope'; known workflows: ")
    assert "research_brief" in out.error
    with pytest.raises(UnknownWorkflowError):
        bench.view("nope", "t1")
    out = bench.send(WF, "t2", DEMO_GOAL, NOBODY, model="nosuch:model")
    assert out.error.startswith("cannot create model 'nosuch:model'")


def test_a_bad_database_url_fails_with_the_masked_url():
    with pytest.raises(DatabaseError, match=r"unsupported database URL 'mysql://u:\*\*\*@h/db'"):
        Workbench(AppConfig(database_url="mysql://u:pw@h/db"))


def test_insight_threads_costs_audit_and_graph(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    assert bench.waiting_threads("default") == {"t1"}
    bench.decide(WF, "t1", _gate_id(bench, "t1"), Decision(decision="approve"), EDITOR)
    assert [t.thread_id for t in bench.threads("default")] == ["t1"]
    assert bench.threads("acme") == []
    costs = {row.key for row in bench.costs("t1", "default")}
    assert costs == {"supervisor", "researcher", "analyst", "writer"}
    kinds = {e.kind for e in bench.timeline("t1", "default")}
    assert {"model_call", "approval", "transition"} <= kinds
    assert bench.verify("default").ok
    assert "writer" in bench.mermaid(WF) and bench.trace_id("t1") is None


def test_perform_sends_into_a_new_thread_and_notes_errors(bench):
    session = ChatSession()
    out = perform(bench, session, Send(DEMO_GOAL), UserSettings(), WF)
    assert out.waiting and session.thread_id.startswith("research_brief-")
    assert session.take_notices() == []
    out = perform(bench, session, Send("again"), UserSettings(), WF)
    assert [n.level for n in session.take_notices()] == ["error"]
    failed = ChatSession()
    perform(bench, failed, Send(DEMO_GOAL), UserSettings(model="nosuch:model"), WF)
    assert failed.thread_id is None  # nothing stored: the next message starts afresh
    assert "cannot create model" in failed.take_notices()[0].text
    closed = ChatSession()
    perform(bench, closed, Continue(), UserSettings(), WF)
    assert "no thread is open" in closed.take_notices()[0].text


def test_links_open_a_thread_once(bench):
    bench.send(WF, "t1", DEMO_GOAL, NOBODY)
    session = ChatSession()
    assert apply_link(bench, session, {"thread": "t1"}, "default") == WF
    assert session.thread_id == "t1"
    assert apply_link(bench, session, {"thread": "t1"}, "default") is None
    other = ChatSession()
    assert apply_link(bench, other, {"thread": "t1"}, "acme") is None
    assert "no thread 't1' for tenant 'acme'" in other.take_notices()[0].text


class _Langfuse:
    """A stand-in Langfuse: records the paths it is sent, answers 200 with `{}`."""

    def __init__(self) -> None:
        paths = self.paths = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_runs_and_decisions_are_traced_and_linked_when_langfuse_is_configured(tmp_path):
    pytest.importorskip("langfuse")
    langfuse = _Langfuse()
    environ = {
        "PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
        "LANGFUSE_PUBLIC_KEY": "pk-test",
        "LANGFUSE_SECRET_KEY": "sk-test",
        "LANGFUSE_HOST": langfuse.host,
    }
    config = config_from_env(environ)
    bench = Workbench(config, environ=environ)
    try:
        bench.send(WF, "t1", DEMO_GOAL, NOBODY)
        first = bench.trace_id("t1")
        assert first
        bench.decide(WF, "t1", _gate_id(bench, "t1"), Decision(decision="approve"), EDITOR)
        assert bench.view(WF, "t1").status == "completed"
        trace = bench.trace_id("t1")
        link = trace_link(config.langfuse_host, thread_id="t1", trace_id=trace)
        assert link == f"{langfuse.host}/trace/{trace}"
    finally:
        bench.close()
        langfuse.server.shutdown()
    assert "/api/public/otel/v1/traces" in langfuse.paths
