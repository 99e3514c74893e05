"""The `podium` command, run as a user runs it: in a subprocess, in a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_demo_without_a_terminal_stops_at_the_gate_and_says_how_to_decide(tmp_path):
    done = podium("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "waiting for approval: gate g-" in done.stderr
    command = next(
        line.split("decide with: ", 1)[1]
        for line in done.stderr.splitlines()
        if "decide with: " in line
    )
    assert command.startswith("podium approve research_brief-") and "--role editor" in command
    assert not (tmp_path / "reports").exists()  # nothing was published
    args = command.split("   ")[0].split()[1:]
    approved = podium(*args, cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("# Brief:")
    assert len(list((tmp_path / "reports").glob("*.md"))) == 1


def test_demo_at_a_terminal_asks_and_publishes_on_approval(tmp_path):
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "podium.cli", "demo"],
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
                os.write(master, b"a\n")
                answered = True
        proc.wait(timeout=30)
    finally:
        os.close(master)
    text = seen.decode(errors="replace")
    assert answered, text[-2000:]
    assert "=== approval needed (tool) ===" in text
    assert "writer wants to call publish_report(" in text
    assert proc.returncode == 0, text[-2000:]
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
