"""The notebooks in notebooks/ run top to bottom, offline, on a fresh kernel.

Each notebook is executed with nbclient on a new kernel started with this interpreter
(`sys.executable`, so no kernel has to be installed first), in a temporary working
directory, with an environment stripped of provider keys, Langfuse and LangSmith
settings and podium's own variables: no notebook may need the network, a key or the
user's database. A startup file of the kernel refuses every connection and name lookup
beyond this machine, so a notebook that reaches for the network fails here. Any error in
any cell fails the test.

Committed notebooks carry no outputs and no execution counts, so diffs stay readable
and no run's data lands in git.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell; the notebooks need a few seconds in all
KERNEL = "podium-tests"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Variables a notebook must never see: keys and endpoints of model providers, tracing
#: back ends, and podium's own settings (database URL, audit key...).
STRIPPED_PREFIXES = (
    "PODIUM_",
    "LANGFUSE_",
    "LANGCHAIN_",
    "LANGSMITH_",
    "OPENAI_",
    "AZURE_OPENAI_",
    "ANTHROPIC_",
    "OLLAMA_",
    "GOOGLE_",
    "MISTRAL_",
    "GROQ_",
    "COHERE_",
)


def _nbclient():
    """nbclient, nbformat and ipykernel come with podium[dev]; say so when missing."""
    try:
        import ipykernel  # noqa: F401
        import nbclient
        import nbformat
    except ImportError as exc:
        reason = f"{exc.name} is not installed; pip install -e '.[dev]' to run the notebooks"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the notebooks must run)")
        pytest.skip(reason)
    return nbclient, nbformat


#: Runs in the kernel before the first cell: loopback only (the kernel's own channels are
#: zmq sockets, which this does not touch).
LOOPBACK_ONLY = """
import socket

_LOCAL = ("127.", "::1", "localhost")
_connect, _connect_ex, _getaddrinfo = (
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
)


def _check(host):
    if not str(host).startswith(_LOCAL):
        raise OSError(f"a notebook tried to reach {host!r}; notebooks must run offline")


def _guarded(method):
    def call(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address[0])
        return method(self, address, *args)

    return call


def _lookup(host, *args, **kwargs):
    if host is not None:
        _check(host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded(_connect)
socket.socket.connect_ex = _guarded(_connect_ex)
socket.getaddrinfo = _lookup
"""
#: Appended to each notebook run: proves the guard above was in force.
GUARD_CHECK = """
import socket
assert socket.getaddrinfo.__name__ == "_lookup", "the loopback-only guard was not installed"
"""


def offline_env(workdir: Path) -> dict[str, str]:
    """The kernel's environment: this one without keys, with temp files under `workdir`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(STRIPPED_PREFIXES) and not name.endswith("_API_KEY")
    }
    startup = workdir / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-loopback-only.py").write_text(LOOPBACK_ONLY, encoding="utf-8")
    python_path = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env.update(
        PYTHONPATH=os.pathsep.join(python_path),  # the podium of this checkout
        PODIUM_MODEL="demo",  # 05 would otherwise pick a local Ollama server if one runs
        TMPDIR=str(workdir),  # notebooks make their scratch folders with tempfile
        IPYTHONDIR=str(workdir / ".ipython"),  # no user profile or startup scripts
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernel spec that starts ipykernel with this interpreter (the project's venv)."""
    _nbclient()
    from jupyter_client.kernelspec import KernelSpecManager

    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher"]
    kernel = {
        "argv": [*argv, "-f", "{connection_file}"],
        "display_name": "Python (podium tests)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)


def test_there_are_notebooks():
    names = [path.name for path in NOTEBOOKS]
    assert names[:5] == [
        "01_quickstart.ipynb",
        "02_human_gates.ipynb",
        "03_policies_and_budgets.ipynb",
        "04_observability.ipynb",
        "05_your_own_model.ipynb",
    ], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline_on_a_fresh_kernel(path, kernel_specs, tmp_path, monkeypatch):
    nbclient, nbformat = _nbclient()
    from jupyter_client.manager import KernelManager

    # The connection file is written by this process; keep it out of the user's runtime dir.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / ".runtime"))
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(GUARD_CHECK))
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        notebook,
        km=manager,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    failure = None
    try:
        client.execute(env=offline_env(tmp_path), cwd=str(tmp_path))
    except nbclient.exceptions.CellExecutionError as exc:
        failure = ANSI.sub("", str(exc))  # the cell's source and its traceback
    if failure:
        pytest.fail(f"{path.name} failed:\n{failure}", pytrace=False)

    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
    ran = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert ran and all(cell.execution_count for cell in ran), "a code cell did not run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["nbformat"] == 4
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    dirty = [
        index
        for index, cell in enumerate(data["cells"])
        if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None)
    ]
    assert dirty == [], (
        f"{path.name}: code cells {dirty} carry outputs or execution counts; clear them "
        "before committing (jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_never_opens_the_default_database(path):
    """`open_runtime()` without a URL would use the user's .podium/podium.db."""
    data = json.loads(path.read_text(encoding="utf-8"))
    source = "\n".join("".join(cell["source"]) for cell in data["cells"])
    assert not re.search(r"open_(async_)?runtime\(\s*\)", source), path.name
    assert "PODIUM_DATABASE_URL" not in source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_uses_public_names_only(path):
    """A notebook is something to copy from: nothing private (`podium._x`, `podium.y._z`)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in data["cells"] if c["cell_type"] == "code")
    private = re.findall(r"\bpodium(?:\.[A-Za-z]\w*)*\._(?!_)\w+", code)
    assert private == [], f"{path.name} uses private names: {private}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_group_of_code_cells_is_explained_first(path):
    """Each run of code cells follows a markdown cell saying, in at least one sentence
    (not only a heading), what it shows."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    unexplained = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code" or (index and cells[index - 1]["cell_type"] == "code"):
            continue
        before = "".join(cells[index - 1]["source"]) if index else ""
        prose = [line for line in before.splitlines() if line.strip() and not line.startswith("#")]
        if not index or cells[index - 1]["cell_type"] != "markdown" or not prose:
            unexplained.append(index)
    assert unexplained == [], f"{path.name}: code cells {unexplained} follow no explanation"
