"""README.md's Deploy blocks, run as written against the suite's `langgraph dev`.

The blocks find the server through `PODIUM_SERVER_URL` (README's default is the port
`langgraph dev` listens on; the suite's server has a free port) and sign in with README's
example keys, which the suite's server accepts (tests/server/conftest.py). The python
blocks continue each other, as in one Python session (`ana` and `thread` come from the
first); bash blocks run in a terminal with the virtualenv active. tests/test_readme.py
runs every other block of README.
"""

from __future__ import annotations

import re

from tests import readme


def test_the_deploy_blocks_run_against_the_server(server, tmp_path):
    deploy = [b for b in readme.runnable() if b.needs_server]
    python = [b for b in deploy if b.language == "python"]
    bash = [b for b in deploy if b.language == "bash"]
    assert python and bash, [b.where for b in deploy]
    env = readme.fresh_terminal_env(PODIUM_SERVER_URL=server.url)
    venv = str(readme.virtualenv())
    env.update(VIRTUAL_ENV=venv, PATH=f"{venv}/bin:{env['PATH']}")  # `. .venv/bin/activate`

    done = readme.run_python_session(python, tmp_path, env)
    failed = next((b for b in python if f"README.md:{b.line} failed" in done.stderr), python[0])
    assert done.returncode == 0, readme.report(failed, done) + f"\n{server.log_tail()}"
    out = done.stdout
    # What README says each block prints.
    assert "publish_report ['editor']" in out, out
    assert re.search(r"^completed # Brief: Write a brief on heat pump adoption", out, re.M), out
    streamed = re.findall(r"^(custom\S*) (\w+)$", out, re.MULTILINE)
    kinds = {kind for _, kind in streamed}
    assert {"plan", "task_started", "task_finished", "gate_raised"} <= kinds, out
    assert any("|" in event for event, kind in streamed if kind == "gate_raised"), streamed

    shell = readme.Shell(tmp_path, env)
    for block in bash:
        done = shell.run(block)
        assert done.returncode == 0, readme.report(block, done) + f"\n{server.log_tail()}"
        if "/triggers/" in block.code:
            assert '"status":"pending"' in done.stdout.replace(" ", ""), done.stdout
