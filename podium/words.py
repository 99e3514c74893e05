"""Counts in messages: "1 task", "2 tasks". Pure vocabulary, so error messages, policy
decisions and prompts say a count the way the command line and the app do."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 tenant", "0 tenants", "2 tenants": a count with its noun.

    Args:
        plural: The plural when it is not `noun` + "s", e.g. "matches".
    """
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
