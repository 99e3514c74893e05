"""The files around the package say the same as the package: pyproject.toml, the Makefile,
the Streamlit settings, and every install hint printed or written in the project."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_license_is_an_spdx_expression_with_a_setuptools_that_reads_it():
    # A license table is deprecated (setuptools warns on every install); the string form
    # needs setuptools 77 or later.
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    requires = PYPROJECT["build-system"]["requires"]
    setuptools = next(r for r in requires if r.startswith("setuptools"))
    assert re.fullmatch(r"setuptools>=(\d+)", setuptools) and int(setuptools[12:]) >= 77


def _floor(package: str) -> str:
    """The lowest version pyproject's extras accept for `package`."""
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        for requirement in extra:
            match = re.fullmatch(rf"{package}>=([\d.]+)", requirement)
            if match:
                return match.group(1)
    raise AssertionError(f"{package} is in no extra of pyproject.toml")


def test_every_langfuse_install_hint_asks_for_the_version_pyproject_needs():
    floor = _floor("langfuse")
    hints = []
    for path in [*ROOT.joinpath("podium").rglob("*.py"), *ROOT.joinpath("notebooks").glob("*")]:
        text = path.read_text(encoding="utf-8", errors="replace")
        hints += [(path.name, v) for v in re.findall(r"langfuse>=([\d.]+)", text)]
    assert hints, "no langfuse install hint found"
    assert [h for h in hints if h[1] != floor] == [], f"pyproject.toml needs langfuse>={floor}"


def _make_dry_run(target: str) -> list[str]:
    """The commands `make TARGET` would run in a fresh checkout (no .venv yet)."""
    # Under `make test` the suite runs inside make: its MAKEFLAGS/MAKELEVEL would make the
    # inner make print "Entering directory" lines around the commands.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["VENV"] = "/nonexistent/podium-venv"
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("target", "install", "runs"),
    [
        ("app", '-e ".[ui]"', "streamlit run app.py"),
        ("demo", "-e .", "podium demo"),
        ("test", '-e ".[dev]"', "pytest"),
    ],
)
def test_make_targets_install_what_they_run_and_no_more(target, install, runs):
    lines = _make_dry_run(target)
    installs = [line for line in lines if " install " in line and "--upgrade pip" not in line]
    assert len(installs) == 1 and installs[0].endswith(f"install --quiet {install}"), lines
    assert lines[-1].endswith(runs), lines


def test_the_streamlit_settings_next_to_the_app_hide_the_deploy_button():
    # Streamlit reads .streamlit/config.toml next to the main script, wherever it starts.
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["toolbarMode"] == "minimal"
    assert config["browser"]["gatherUsageStats"] is False
