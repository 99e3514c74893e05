"""The `podium` command, run as a user runs it: in a subprocess, in a fresh directory."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from podium.cli import main


def podium(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "podium.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_runs_end_to_end_on_the_embedded_default(tmp_path):
    done = podium("demo", "--approve-all", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Brief: Write a brief on heat pump adoption")
    assert "## By the numbers" in done.stdout
    assert (tmp_path / ".podium" / "podium.db").exists()
    # Progress lines as tasks start and finish, then the task table and token totals.
    assert "tools are default deny" in done.stderr and "default.yaml" in done.stderr
    assert "plan: 4 tasks" in done.stderr
    assert "started   t1 researcher" in done.stderr
    assert "completed t4 writer" in done.stderr
    assert "t3    analyst     completed  t1,t2" in done.stdout
    assert "total" in done.stdout.splitlines()[-1]

    listed = podium("threads", cwd=tmp_path)
    assert listed.returncode == 0
    thread = listed.stdout.splitlines()[2].split()[0]
    assert thread.startswith("research_brief-")
    shown = podium("show", thread, cwd=tmp_path)
    assert shown.returncode == 0
    assert "=== answer ===" in shown.stdout and "t4    writer" in shown.stdout
    nothing = podium("resume", thread, cwd=tmp_path)
    assert nothing.returncode == 0 and "nothing left to run" in nothing.stderr


def test_run_on_a_named_thread_and_tenant(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    done = podium(
        "run",
        "research_brief",
        "Write a brief on rooftop solar",
        "--thread",
        "mine",
        "--tenant",
        "acme",
        "--db",
        db,
        "--quiet",
        "--approve-all",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "rooftop solar" in done.stdout.lower()
    assert "started" not in done.stderr
    assert "mine" in podium("threads", "--tenant", "acme", "--db", db, cwd=tmp_path).stdout
    other = podium("threads", "--tenant", "globex", "--db", db, cwd=tmp_path)
    assert "no threads for tenant 'globex'" in other.stdout
    hidden = podium("show", "mine", "--tenant", "globex", "--db", db, cwd=tmp_path)
    assert hidden.returncode == 2 and "no thread 'mine' for tenant 'globex'" in hidden.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "reserch_brief", "goal"], "unknown workflow 'reserch_brief'; known workflows: "),
        (["threads", "--db", "mysql://root@localhost/x"], "unsupported database URL"),
        (
            ["threads", "--db", "postgresql://u:hunter2@127.0.0.1:1/x"],
            "cannot connect to postgresql://u:***@127.0.0.1:1/x",
        ),
        (["run", "research_brief", "g", "--model", "nosuchprovider:model"], "cannot create model"),
        (["threads", "--db", "postgresql://..."], "cannot connect to postgresql://...: the host"),
        (["show", "nope"], "no thread 'nope' for tenant 'default'; list the tenant's threads with"),
        (["audit", "show", "nope"], "no thread 'nope' for tenant 'default'"),
        (["dlq", "show", "nope"], "dead letters with `podium dlq list --tenant TENANT`"),
        (["edit", "t", "--args", "[1, 2]"], "--args must be a JSON object of argument names"),
        (["edit", "t", "--args", "{oops"], "--args must be JSON: Expecting property name"),
        (["edit", "t", "--plan", '{"tasks": 1}'], "--plan must be a JSON list of tasks"),
        (["edit", "t", "--plan", "[1]"], "--plan must be a JSON list of tasks; at 0: input"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, message):
    done = podium(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_env_selects_database_and_model(tmp_path):
    db = tmp_path / "env.db"
    done = podium(
        "run",
        "research_brief",
        "Write a brief on grid storage",
        "--quiet",
        cwd=tmp_path,
        env={"PODIUM_DATABASE_URL": f"sqlite:///{db}", "PODIUM_MODEL": "demo"},
    )
    assert done.returncode == 0, done.stderr
    assert db.exists() and not (tmp_path / ".podium").exists()


def test_every_command_has_help(capsys):
    for command in ["demo", "run", "resume", "threads", "show", "workflows"]:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: podium" in capsys.readouterr().out


def test_workflows_lists_the_catalog(capsys):
    assert main(["workflows"]) == 0
    assert "research_brief" in capsys.readouterr().out


def test_extra_workflows_from_the_environment(tmp_path):
    module = tmp_path / "my_flows.py"
    module.write_text(
        "import podium\n"
        "def build(model=None):\n"
        '    """A one-agent echo workflow."""\n'
        "    return podium.build_workflow([podium.AgentSpec(name='echo')], name='echo',\n"
        "        model=model)\n"
    )
    env = {"PODIUM_WORKFLOWS": "echo=my_flows:build", "PYTHONPATH": str(tmp_path)}
    listed = podium("workflows", cwd=tmp_path, env=env)
    assert "echo" in listed.stdout and "A one-agent echo workflow." in listed.stdout
    ran = podium("run", "echo", "Write a brief on heat pumps", "--quiet", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr


def test_a_one_task_plan_is_said_in_the_singular(tmp_path):
    (tmp_path / "one_flow.py").write_text(
        "import podium\n"
        "from podium.testing import ScriptedChatModel\n"
        "def build(model=None):\n"
        "    model = ScriptedChatModel(responses=['done'], name='echo')\n"
        "    plan = podium.Plan(tasks=[podium.PlannedTask(id='t1', agent='echo',\n"
        "        instruction='say it')])\n"
        "    return podium.build_workflow([podium.AgentSpec(name='echo', model=model)],\n"
        "        name='one', supervisor=plan, approve_plan=True)\n"
    )
    env = {"PODIUM_WORKFLOWS": "one=one_flow:build"}
    # Unattended, the run stops at the plan's gate and sums the plan up.
    stopped = podium("run", "one", "Say it", "--thread", "o1", cwd=tmp_path, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "plan of 1 task:" in stopped.stderr, stopped.stderr
    # Approved, the progress lines announce the plan.
    ran = podium("run", "one", "Say it", "--approve-all", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "plan: 1 task\n" in ran.stderr, ran.stderr
    assert "1 tasks" not in stopped.stderr + ran.stderr + ran.stdout


def _decide_with(stderr: str) -> str:
    """The command the CLI printed for deciding a gate, without its trailing remark."""
    line = next(line for line in stderr.splitlines() if "decide with: " in line)
    return line.split("decide with: ", 1)[1].split("   (or ", 1)[0]


def test_workflows_of_the_environment_are_found_in_the_working_directory(tmp_path):
    # As README's my_flow.py: a module next to the user, no PYTHONPATH, no package.
    (tmp_path / "my_flow.py").write_text(
        "import podium\n"
        "def build(model=None):\n"
        '    """One writer."""\n'
        "    return podium.build_workflow([podium.AgentSpec(name='writer')], name='mine',\n"
        "        model=model)\n"
    )
    env = {"PODIUM_WORKFLOWS": "mine=my_flow:build"}
    ran = podium(
        "run", "mine", "Write a brief on heat pumps", "--thread", "m1", cwd=tmp_path, env=env
    )
    assert ran.returncode == 0, ran.stderr
    shown = podium("show", "m1", cwd=tmp_path, env=env)
    assert shown.returncode == 0 and "workflow mine" in shown.stdout, shown.stderr
    unknown = podium("show", "m1", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "PODIUM_WORKFLOWS='mine=your_module:factory'" in unknown.stderr


def test_demo_without_a_terminal_stops_at_the_gate_and_says_how_to_decide(tmp_path):
    done = podium("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "waiting for approval: gate g-" in done.stderr
    # The one-line summary clips long values inside their quotes and gives their length.
    summary = next(line for line in done.stderr.splitlines() if "waiting for approval" in line)
    assert re.search(r'content="# Brief: [^"]*…" \(\d+ chars\)', summary), summary
    assert re.search(r'filename="[a-z0-9-]+\.md"', summary), summary
    command = _decide_with(done.stderr)
    # Started as `python -m podium.cli`, so the hint says so: it runs as printed.
    assert command.startswith(f"{sys.executable} -m podium.cli approve research_brief-")
    assert "--role editor" in command
    assert not (tmp_path / "reports").exists()  # nothing was published
    approved = _shell(command, cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("# Brief:")
    assert len(list((tmp_path / "reports").glob("*.md"))) == 1


def _table(text: str, header: str) -> dict[str, dict[str, str]]:
    """The text table whose header line starts with `header`: rows by first cell, each a
    dict by column name (columns cut where the dashed line under the header says)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    spans = [m.span() for m in re.finditer(r"-+", lines[start + 1])]
    spans[-1] = (spans[-1][0], None)
    names = [lines[start][a:b].strip() for a, b in spans]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = dict(zip(names, (line[a:b].strip() for a, b in spans), strict=True))
        rows[cells[names[0]]] = cells
    return rows


def test_a_thread_at_a_gate_is_waiting_and_its_tables_agree_with_costs(tmp_path):
    assert podium("demo", cwd=tmp_path).returncode == 0
    listed = podium("threads", cwd=tmp_path)
    thread, _, status = listed.stdout.splitlines()[2].split()[:3]
    assert status == "waiting", listed.stdout
    assert "1 waiting at a gate: see `" in listed.stdout
    assert _stored_status(tmp_path, thread) == "waiting"  # stored so, not only shown so

    shown = podium("show", thread, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    header, _goal, gate_line, roles, decide = shown.stdout.splitlines()[:5]
    assert "status waiting" in header
    assert re.match(r"waiting at gate g-\w+ \(task t4, writer\): writer wants to call ", gate_line)
    assert roles.strip() == "may decide: editor"
    assert f"-m podium.cli approve {thread} --gate g-" in decide and "--role editor" in decide
    tasks = _table(shown.stdout, "task  agent")
    assert (tasks["t4"]["agent"], tasks["t4"]["status"]) == ("writer", "waiting")
    assert "approval of publish_report" in tasks["t4"]["note"]
    assert "paused before" not in shown.stdout and "initializing" not in shown.stdout

    # The usage table, the task table and `podium costs` count the same calls and tokens,
    # the waiting writer's call included.
    usage = _table(shown.stdout, "agent       calls")
    costs = _table(podium("costs", "--by", "thread", cwd=tmp_path).stdout, "thread")
    by_agent = _table(podium("costs", "--by", "agent", cwd=tmp_path).stdout, "agent")
    assert usage["total"]["calls"] == costs[thread]["calls"] == by_agent["total"]["calls"] == "8"
    assert usage["total"]["tokens"] == costs[thread]["tokens"]
    assert usage["writer"]["tokens"] == tasks["t4"]["tokens"] != "0"  # spent before the gate
    task_tokens = sum(int(row["tokens"]) for row in tasks.values())
    assert task_tokens + int(usage["supervisor"]["tokens"]) == int(usage["total"]["tokens"])

    approved = _shell(_decide_with(shown.stdout), cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    after = podium("threads", cwd=tmp_path).stdout.splitlines()[2].split()
    assert after[2] == "completed"
    assert _stored_status(tmp_path, thread) == "completed"


def _stored_status(cwd: Path, thread: str) -> str:
    """The status the thread index of the embedded default database holds."""
    with closing(sqlite3.connect(cwd / ".podium" / "podium.db")) as db:
        [(status,)] = db.execute(
            "SELECT status FROM podium_threads WHERE thread_id = ?", (thread,)
        ).fetchall()
    return str(status)


def _shell(command: str, *, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "VIRTUAL_ENV"))}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("activated", [False, True], ids=["venv-path", "activated"])
def test_hints_start_podium_the_way_it_was_started(tmp_path, activated):
    # A checkout with its virtualenv in .venv, before and after `. .venv/bin/activate`.
    venv = Path(sys.executable).parent.parent
    (tmp_path / ".venv").symlink_to(venv, target_is_directory=True)
    bare = ":".join(p for p in os.environ["PATH"].split(":") if Path(p) != venv / "bin")
    path = f"{tmp_path / '.venv' / 'bin'}:{bare}" if activated else bare
    started = "podium" if activated else ".venv/bin/podium"
    done = _shell(f"{started} demo", cwd=tmp_path, path=path)
    assert done.returncode == 0, done.stderr
    command = _decide_with(done.stderr)
    assert command.startswith(f"{started} approve research_brief-"), command
    approved = _shell(command, cwd=tmp_path, path=path)
    assert approved.returncode == 0, approved.stderr
    assert len(list((tmp_path / "reports").glob("*.md"))) == 1


def _demo_at_a_terminal(tmp_path: Path, answer: bytes | None, *options: str) -> tuple[str, int]:
    """Run `podium demo` on a pseudo-terminal, type `answer` at the gate's prompt (None:
    expect no prompt); returns everything the terminal showed and the exit code."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium.cli", "demo", *options],
        cwd=tmp_path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen, deadline, answered = b"", time.monotonic() + 60, False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
            if not answered and b"[a]pprove, [r]eject or [e]dit?" in seen:
                assert answer is not None, "asked at the gate although told not to"
                os.write(master, answer)
                answered = True
        proc.wait(timeout=30)
        while select.select([master], [], [], 0.2)[0]:  # what is left on the terminal
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    text = seen.decode(errors="replace").replace("\r\n", "\n")
    assert answered == (answer is not None), text[-2000:]
    return text, proc.returncode


def test_demo_at_a_terminal_asks_and_publishes_on_approval(tmp_path):
    text, code = _demo_at_a_terminal(tmp_path, b"a\n")
    assert "=== approval needed (tool) ===" in text
    assert "writer wants to call publish_report with:" in text
    # The brief reads as text, one argument per line, not as one escaped JSON string.
    assert re.search(r"\n  filename: [a-z0-9-]+\.md\n", text), text[-3000:]
    assert "\n  content:\n    # Brief: Write a brief on heat pump adoption" in text
    assert "\n    ## By the numbers\n" in text
    assert "\\n" not in text
    assert "may decide: editor" in text
    assert code == 0, text[-2000:]
    assert len(list((tmp_path / "reports").glob("*.md"))) == 1


def test_a_follow_up_round_that_repeats_a_call_gets_a_new_gate(tmp_path):
    # The demo model asks for the same call ids every round: gate ids and effect keys
    # carry the round, so round 2 gets its own gate and publishes again.
    first = podium("demo", "--approve-all", "--thread", "r2", "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = podium("demo", "--approve-all", "--thread", "r2", "--quiet", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("# Brief:")
    gates = [line for line in second.stderr.splitlines() if line.startswith("approving gate")]
    assert gates, second.stderr
    first_gates = {
        line.split()[2] for line in first.stderr.splitlines() if "approving gate" in line
    }
    assert first_gates.isdisjoint(line.split()[2] for line in gates)
    shown = podium("show", "r2", cwd=tmp_path)
    assert "status completed  round 2" in shown.stdout, shown.stdout


def test_no_input_stops_at_the_gate_even_at_a_terminal(tmp_path):
    text, code = _demo_at_a_terminal(tmp_path, None, "--no-input")
    assert code == 0, text[-2000:]
    assert "waiting for approval: gate g-" in text and "decide with: " in text
    assert not (tmp_path / "reports").exists()


def test_end_of_input_at_the_gate_prompt_leaves_the_gate_open_and_exits_1(tmp_path):
    text, code = _demo_at_a_terminal(tmp_path, b"\x04")  # Ctrl-D
    assert "Traceback" not in text and "EOFError" not in text
    assert "no decision (end of input): the gate stays open" in text
    assert re.search(r"podium\.cli approve research_brief-\S+ --gate g-\S+ --role editor", text)
    assert code == 1, text[-2000:]
    assert not (tmp_path / "reports").exists()
    listed = podium("threads", cwd=tmp_path)
    assert "waiting" in listed.stdout.splitlines()[2], listed.stdout
