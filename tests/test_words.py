"""Counts in messages say their noun in the singular for one."""

from __future__ import annotations

import pytest

from podium.render import count as rendered
from podium.words import count


@pytest.mark.parametrize(
    ("n", "noun", "plural", "said"),
    [
        (0, "task", None, "0 tasks"),
        (1, "task", None, "1 task"),
        (2, "task", None, "2 tasks"),
        (1, "match", "matches", "1 match"),
        (3, "match", "matches", "3 matches"),
        (1, "e-mail address", "e-mail addresses", "1 e-mail address"),
    ],
)
def test_count(n, noun, plural, said):
    assert count(n, noun, plural) == said


def test_render_counts_the_same_way():
    assert rendered is count
