"""Find and redact personal data: e-mail addresses, phone numbers, payment card numbers.

Card numbers are digit runs of 13-19 digits (single spaces or hyphens allowed between
digits) that pass the Luhn check, so order numbers and other long numbers stay.
Phone numbers are international numbers written with a leading "+" (8-15 digits)
and North American numbers written as (555) 123-4567, 555-123-4567, 555.123.4567 or
555 123 4567; bare digit strings are left alone because they are usually ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable

KINDS = ("card", "email", "phone")
MARKERS = {kind: f"[{kind} redacted]" for kind in KINDS}

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")
_DIGIT_RUN = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,}(?![\d-])")
_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![\w])")
_NORTH_AMERICAN = re.compile(r"(?<![\w(])(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w])")


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum used by payment cards."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact(kind: str, text: str) -> tuple[str, int]:
    """`text` with every `kind` ("card", "email" or "phone") replaced, and how many."""
    return _REDACTORS[kind](text)


def _redact_email(text: str) -> tuple[str, int]:
    return _EMAIL.subn(MARKERS["email"], text)


def _redact_phone(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        digits = re.sub(r"\D", "", match.group())
        if match.group().startswith("+") and not 8 <= len(digits) <= 15:
            return match.group()
        count += 1
        return MARKERS["phone"]

    text = _INTERNATIONAL.sub(replace, text)
    text = _NORTH_AMERICAN.sub(replace, text)
    return text, count


def _redact_card(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        out, found = _cards_in(match.group())
        count += found
        return out

    return _DIGIT_RUN.sub(replace, text), count


def _cards_in(run: str) -> tuple[str, int]:
    # A run may hold a card next to other numbers ("order 1234 4111 1111 1111 1111"), so
    # try spans of whole digit groups, from each group on, longest valid span first.
    groups = list(re.finditer(r"\d+", run))
    out, done, found, index = [], 0, 0, 0
    while index < len(groups):
        best, digits = None, 0
        for last in range(index, len(groups)):
            digits += len(groups[last].group())
            if digits > 19:
                break
            span = run[groups[index].start() : groups[last].end()]
            if digits >= 13 and luhn_valid(re.sub(r"\D", "", span)):
                best = last
        if best is None:
            index += 1
            continue
        out += [run[done : groups[index].start()], MARKERS["card"]]
        done, found, index = groups[best].end(), found + 1, best + 1
    return "".join(out) + run[done:], found


_REDACTORS: dict[str, Callable[[str], tuple[str, int]]] = {
    "card": _redact_card,
    "email": _redact_email,
    "phone": _redact_phone,
}
