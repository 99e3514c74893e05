"""Model names: a provider whose package is missing is named with the install command."""

from __future__ import annotations

import sys

import pytest

import podium.models as models
from podium.errors import ConfigurationError


@pytest.mark.parametrize(
    ("name", "module", "hint"),
    [
        ("anthropic:claude-sonnet-4-5", "langchain_anthropic", 'pip install -e ".[anthropic]"'),
        ("ollama:llama3.1", "langchain_ollama", 'pip install -e ".[ollama]"'),
    ],
)
def test_a_missing_provider_package_names_the_checkouts_extra(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, hint: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    models._from_string.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as refused:
            models.resolve_model(name)
    finally:
        models._from_string.cache_clear()
    assert str(refused.value) == (
        f"model {name!r} needs a provider package: {hint} in podium's checkout"
    )
