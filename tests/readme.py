"""README.md's fenced code blocks, and a working copy to run them in as a reader would.

A reader works in a checkout, in one terminal: `bash` blocks run in README order in one
shell session (each block in its own `bash`, which starts with the environment and working
directory the previous block left, so `. .venv/bin/activate` and `export` carry over), and
`python` blocks run with the project's interpreter in the same directory. A `python` block
whose first line is `# NAME.py` is a file to save there (a later block runs it). A block
whose first line is `# not run by the tests: REASON` is not run; its reason is shown in
README itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Fence languages the tests run; any other fence is documentation (JSON, YAML, a tree).
RUN = ("bash", "python")
#: Fence languages that look like commands but would escape the tests: not allowed.
FORBIDDEN = ("sh", "shell", "console", "zsh", "py", "python3", "pycon")
SKIP = re.compile(r"^#\s*not run by the tests:\s*(.+)$")
FILE = re.compile(r"^#\s*([A-Za-z_]\w*\.py)\s*$")
#: Seconds one block may take (`make demo` installs nothing when the venv is current).
BLOCK_TIMEOUT = 180


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    language: str
    code: str
    line: int  # the line of the opening fence
    section: str  # the nearest `## ` heading above it

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.section}, {self.language})"

    @property
    def skip_reason(self) -> str | None:
        """Why it is not run (its first comment lines), or None when it runs."""
        lines = self.code.splitlines()
        match = SKIP.match(lines[0]) if lines else None
        if match is None:
            return None
        reason = [match.group(1).strip()]
        for line in lines[1:]:
            if not line.startswith("# "):
                break
            reason.append(line[2:].strip())
        return " ".join(reason)

    @property
    def file_name(self) -> str | None:
        """`NAME.py` for a python block that is a file to save (first line `# NAME.py`)."""
        first = self.code.splitlines()[0] if self.code else ""
        match = FILE.match(first) if self.language == "python" else None
        return match.group(1) if match else None

    @property
    def needs_server(self) -> bool:
        """Blocks of the Deploy section talk to a LangGraph server."""
        return self.section == "Deploy"


def blocks(path: Path = README) -> list[Block]:
    """Every fenced block of the file, in order (also fences indented in a list item,
    their indentation removed)."""
    found: list[Block] = []
    section, fence, start, body, indent = "", None, 0, [], ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip(" ")
        if fence is None and line.startswith("## "):
            section = line[3:].strip()
        elif fence is None and stripped.startswith("```"):
            fence, start, body = stripped[3:].strip(), number, []
            indent = line[: len(line) - len(stripped)]
        elif fence is not None and stripped.startswith("```") and line.startswith(indent):
            found.append(Block(fence, "\n".join(body) + "\n", start, section))
            fence = None
        elif fence is not None:
            body.append(line.removeprefix(indent))
    assert fence is None, f"README.md:{start}: a code fence is never closed"
    return found


def runnable(path: Path = README) -> list[Block]:
    return [b for b in blocks(path) if b.language in RUN and b.skip_reason is None]


# -- where the blocks run ------------------------------------------------------------------


def virtualenv() -> Path:
    """The virtualenv running the tests: the one README's `.venv` stands for."""
    if sys.prefix == sys.base_prefix:
        reason = "README blocks run in the project's virtualenv; run the tests from it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(sys.prefix)


def working_copy(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied to `target`, with mtimes
    kept, and `.venv` linking to the tests' virtualenv, as after `make demo`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    (target / ".venv").symlink_to(virtualenv(), target_is_directory=True)
    # `make demo` would reinstall podium from this copy into the shared virtualenv (and
    # point its editable install here) if the venv were older than pyproject.toml.
    current = subprocess.run(
        ["make", "-q", ".venv/.podium-installed"], cwd=target, capture_output=True
    )
    if current.returncode != 0:
        pytest.fail(
            f"{virtualenv()} is older than pyproject.toml (make would reinstall podium): "
            "run `make demo` or `make test` in the checkout first"
        )
    return target


def fresh_terminal_env(**extra: str) -> dict[str, str]:
    """A new terminal's environment: no virtualenv active, no podium settings."""
    venv_bin = str(virtualenv() / "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PODIUM_", "LANGFUSE_", "VIRTUAL_ENV", "PYTEST_", "COV_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


class Shell:
    """One terminal session: blocks run one after the other, each starting with the
    environment and working directory the previous one left."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self._state = cwd.parent / f".{cwd.name}-shell-state"

    def run(self, block: Block) -> subprocess.CompletedProcess:
        script = (
            "set -eo pipefail\n"
            f"{block.code}\n"
            f'{{ pwd; env -0; }} > "{self._state}"\n'  # what the next block starts with
        )
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
        if done.returncode == 0:
            cwd, _, env = self._state.read_text().partition("\n")
            self.cwd = Path(cwd)
            self.env = dict(item.split("=", 1) for item in env.split("\0") if "=" in item)
        return done


def run_python(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A python block as a script of its own, with the project's interpreter."""
    return subprocess.run(
        [sys.executable, "-c", block.code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )


#: Runs python blocks one after the other in one namespace, like one Python session.
SESSION = """
import json, sys, traceback
for line, code in json.load(open(sys.argv[1])):
    print(f"=== README.md:{line} ===", flush=True)
    try:
        exec(compile(code, f"README.md:{line}", "exec"), globals())
    except BaseException:
        traceback.print_exc()
        sys.exit(f"README.md:{line} failed")
"""


def run_python_session(
    session: list[Block], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """Python blocks that continue each other (later ones use earlier ones' names)."""
    script = cwd / ".readme-session.json"
    script.write_text(json.dumps([[b.line, b.code] for b in session]), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-c", SESSION, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT * 2,
    )


def report(block: Block, done: subprocess.CompletedProcess) -> str:
    """A failed block, as the reader would see it: the code, then what it printed."""
    return (
        f"{block.where} failed with exit code {done.returncode}:\n"
        f"{block.code}\n--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n"
        f"{done.stderr[-4000:]}"
    )


def files(session: list[Block]) -> Iterator[Block]:
    return (b for b in session if b.file_name)
