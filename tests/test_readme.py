"""README.md works as written: every `bash` and `python` block runs, in README order.

The blocks outside "Deploy" run here, in a copy of the checkout whose `.venv` is the
tests' virtualenv, in one terminal session that starts without the virtualenv active
(README's own `. .venv/bin/activate` switches it on) and on the checkout's default
database, as a newcomer's would. The Deploy blocks need a LangGraph server: they run
against the suite's `langgraph dev` in tests/server/test_readme_server.py. A block that
cannot run here says why in its first line, in README itself; those are counted below,
so a new one is a deliberate change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import readme
from tests.readme import Block, Shell, blocks, run_python, runnable

ROOT = readme.ROOT
#: Blocks README marks as not run, each with its reason: `make test` (the suite itself),
#: a real model (a key and the network), `langgraph dev`, the scale-out servers, the app
#: twice (servers that run until stopped) and JupyterLab.
MARKED = 7


def test_every_command_block_is_run_or_says_why_not():
    found = blocks()
    fences = {b.language for b in found}
    assert not fences & set(readme.FORBIDDEN), (
        f"README uses fences {sorted(fences & set(readme.FORBIDDEN))}: write `bash` or "
        "`python`, so the tests run them"
    )
    assert fences <= {*readme.RUN, "json", "yaml", "js", ""}, fences
    marked = [b for b in found if b.language in readme.RUN and b.skip_reason is not None]
    for block in marked:
        assert len(block.skip_reason or "") > 20, f"{block.where}: say why it is not run"
    assert len(marked) == MARKED, "\n".join(f"{b.where}: {b.skip_reason}" for b in marked)
    ran = runnable()
    assert len(ran) >= 10 and any(b.needs_server for b in ran), [b.where for b in ran]
    # A file block is used: a later bash block runs or imports it.
    for block in readme.files(ran):
        stem = Path(block.file_name or "").stem
        later = [b for b in ran if b.line > block.line and b.language == "bash"]
        assert any(stem in b.code for b in later), f"{block.where}: nothing runs {stem}"


def test_the_readme_runs_as_written(tmp_path):
    copy = readme.working_copy(tmp_path / "podium")
    shell = Shell(copy, readme.fresh_terminal_env())
    for block in (b for b in runnable() if not b.needs_server):
        if block.file_name:
            (shell.cwd / block.file_name).write_text(block.code, encoding="utf-8")
            continue
        done = (
            shell.run(block)
            if block.language == "bash"
            else run_python(block, shell.cwd, shell.env)
        )
        assert done.returncode == 0, readme.report(block, done)
        check_output(block, done.stdout + done.stderr, shell)


def check_output(block: Block, output: str, shell: Shell) -> None:
    """What the reader is told to expect, where README says it in a comment."""
    if "make demo" in block.code:
        # Started through make, before the virtualenv is activated: the hint says so.
        assert ".venv/bin/podium approve research_brief-" in output, output[-2000:]
    if ". .venv/bin/activate" in block.code:
        assert shell.env.get("VIRTUAL_ENV"), "activating the virtualenv changed nothing"
        assert re.search(r"research_brief-\w+\s+research_brief\s+waiting", output), output
    if "python my_flow.py" in block.code:
        assert "# Brief: Write a brief on heat pumps and storage" in output, output[-2000:]
        assert "Heat pump sales rose" in output and "Grid battery capacity" in output
        assert re.search(r"thread t1 +workflow my_brief +tenant acme +status completed", output)
        tasks = re.findall(r"^t\d+ +(\w+) +(\w+)", output, re.MULTILINE)
        assert tasks and {agent for agent, _ in tasks} == {"researcher", "writer"}, tasks
    if "podium show brief-1" in block.code:
        assert "status waiting" in output and "may decide: editor" in output, output


def test_the_policy_shown_for_my_brief_is_the_one_shipped():
    (shown,) = [b for b in blocks() if b.language == "yaml"]
    shipped = (ROOT / "policies" / "my_brief.yaml").read_text(encoding="utf-8")
    body = "\n".join(line for line in shipped.splitlines() if not line.startswith("#"))
    assert shown.code.strip() == body.strip()


def test_the_langgraph_json_shown_is_the_repositorys():
    (shown,) = [b for b in blocks() if b.language == "json"]
    assert json.loads(shown.code) == json.loads((ROOT / "langgraph.json").read_text())


def test_the_env_shown_names_the_keys_the_suites_server_accepts():
    """The server blocks use README's example keys; the suite's server knows them."""
    from tests.server.conftest import API_KEYS, WEBHOOK_SECRETS

    (deploy,) = [b for b in blocks() if "cat > .env" in b.code]
    env = dict(
        line.split("=", 1) for line in deploy.code.splitlines() if line.startswith("PODIUM_")
    )
    for entry in env["PODIUM_API_KEYS"].split(";"):
        key, _, who = entry.partition("=")
        tenant, user, *roles = who.split(":")
        assert API_KEYS[key] == (tenant, user, tuple(roles[0].split("+")) if roles else ())
    secrets = dict(item.split("=", 1) for item in env["PODIUM_WEBHOOK_SECRETS"].split(";"))
    assert secrets == WEBHOOK_SECRETS


@pytest.mark.parametrize(
    "name", ["PODIUM_DATABASE_URL", "PODIUM_MODEL", "PODIUM_WORKFLOWS", "PODIUM_SERVER_URL"]
)
def test_the_configuration_table_lists_what_the_entry_points_read(name):
    text = readme.README.read_text(encoding="utf-8")
    assert f"| `{name}` |" in text
    sources = [ROOT / "podium" / "cli.py", ROOT / "podium" / "commands" / "_common.py"]
    sources += [ROOT / "podium" / "ui" / "settings.py", ROOT / "app.py"]
    assert any(name in p.read_text(encoding="utf-8") for p in sources), name


def test_readme_helpers_find_blocks_and_reasons(tmp_path):
    sample = tmp_path / "README.md"
    sample.write_text(
        "## One\n\n```bash\necho hi\n```\n\n## Deploy\n\n```python\n"
        "# not run by the tests: it needs a\n# server\nprint(1)\n```\n\n"
        "```python\n# flow.py\nx = 1\n```\n\n1. A step:\n   ```bash\n   echo in a list\n   ```\n",
        encoding="utf-8",
    )
    first, second, third, fourth = blocks(sample)
    assert (first.section, first.language, first.code, first.line) == (
        "One",
        "bash",
        "echo hi\n",
        3,
    )
    assert first.skip_reason is None and not first.needs_server
    assert second.skip_reason == "it needs a server" and second.needs_server
    assert third.file_name == "flow.py" and runnable(sample) == [first, third, fourth]
    assert (fourth.code, fourth.line) == ("echo in a list\n", 21)
