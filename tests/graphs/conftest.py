"""Fixtures of the graph tests: a scripted OpenAI-compatible server (tests/fake_openai)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import podium.models
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def openai_server() -> Iterator:
    """Start a fake server with the given scripts; each must be used up by teardown."""
    made: list[FakeOpenAI] = []

    def start(scripts, **kwargs) -> FakeOpenAI:
        fake = FakeOpenAI(scripts, **kwargs).__enter__()
        made.append(fake)
        return fake

    yield start
    for fake in made:
        fake.__exit__(None, None, None)
    for fake in made:
        fake.assert_consumed()


@pytest.fixture
def models_from_env() -> Iterator[None]:
    """Models made from strings ("openai:gpt-4o") are cached per process with the
    environment they were made in: a test that points them at its own server starts and
    ends with none cached."""
    podium.models._from_string.cache_clear()
    yield
    podium.models._from_string.cache_clear()
