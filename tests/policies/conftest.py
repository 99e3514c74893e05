"""Helpers for policy tests: build a PolicySet from YAML text through the real loader."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from podium.policies import PolicySet, load_policies


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """write_policy(text, name="policy.yaml") -> the path of a dedented YAML file."""

    def write(text: str, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def policy(write_policy: Callable[..., Path]) -> Callable[[str], PolicySet]:
    """policy(text) -> the PolicySet loaded from that YAML text."""
    return lambda text: load_policies(write_policy(text))
