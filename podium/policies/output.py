"""Output filters on tool results and final answers: redaction and truncation.

Scopes, most specific first: `tools.<tool>.output` (tool results only), then the
agent, workflow, tenant and global `output` blocks.

- `redact` rules add up across scopes (a regex a wide scope redacts stays redacted);
  each replaces every match with its literal `replacement`.
- `pii: {email, phone, card}`: each kind is decided by the most specific scope that
  sets it, so a tool whose results must show e-mail addresses can set `email: false`.
- `max_length` (and its `marker`): the most specific scope decides; longer text is cut
  to `max_length` characters and the marker appended.

Order: regex redactions, then personal data, then truncation, so a cut never leaves
half of a secret behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import podium.policies._pii as _pii
import podium.words as words
from podium.policies.decision import CallScope, Decision, allow, first, key, layers
from podium.policies.schema import PolicySet, Redaction, compiled

DEFAULT_MARKER = " [truncated]"
_NOUNS = {
    "card": ("card number", "card numbers"),
    "email": ("e-mail address", "e-mail addresses"),
    "phone": ("phone number", "phone numbers"),
}


@dataclass(frozen=True, slots=True)
class FilterResult:
    """The filtered text and one decision per rewrite (none when the text is unchanged)."""

    text: str
    decisions: tuple[Decision, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.decisions)


@dataclass(frozen=True, slots=True)
class OutputFilters:
    """The filters that apply to one output, each with the rule that set it."""

    redact: tuple[tuple[Redaction, str], ...] = ()
    pii: tuple[tuple[str, str], ...] = ()
    max_length: int | None = None
    max_length_rule: str | None = None
    marker: str = DEFAULT_MARKER


def output_filters(policy: PolicySet, call: CallScope, *, tool: str | None = None) -> OutputFilters:
    """The filters for a result of `tool`, or for the final answer when `tool` is None."""
    scopes: list[tuple[str, Any]] = []
    settings = policy.tools.get(tool) if tool is not None else None
    if settings is not None and settings.output is not None:
        scopes.append((key("tools", tool, "output"), settings.output))
    scopes += [(f"{p}.output", b.output) for p, b in layers(policy, call) if b.output is not None]
    redact = tuple(
        (rule, f"{prefix}.redact[{index}]")
        for prefix, output in reversed(scopes)
        for index, rule in enumerate(output.redact)
    )
    pii = []
    for kind in _pii.KINDS:
        enabled, rule = first(scopes, "pii", kind)
        if enabled and rule is not None:
            pii.append((kind, rule))
    max_length, length_rule = first(scopes, "max_length")
    marker, _ = first(scopes, "marker")
    return OutputFilters(
        redact, tuple(pii), max_length, length_rule, DEFAULT_MARKER if marker is None else marker
    )


def _literal(replacement: str) -> Callable[[re.Match[str]], str]:
    # A function replacement is used as is: no backslash or group expansion surprises.
    return lambda _match: replacement


def filter_output(
    policy: PolicySet, call: CallScope, text: str, *, tool: str | None = None
) -> FilterResult:
    """Apply the output filters to `text` (a result of `tool`, or the final answer)."""
    filters = output_filters(policy, call, tool=tool)
    decisions: list[Decision] = []
    for redaction, rule in filters.redact:
        text, count = compiled(redaction.pattern).subn(_literal(redaction.replacement), text)
        if count:
            decisions.append(
                allow(
                    f"redacted {words.count(count, 'match', 'matches')} of {redaction.pattern!r}",
                    rule,
                    filter="redact",
                    pattern=redaction.pattern,
                    count=count,
                )
            )
    for kind, rule in filters.pii:
        text, count = _pii.redact(kind, text)
        if count:
            decisions.append(
                allow(
                    f"redacted {words.count(count, *_NOUNS[kind])}",
                    rule,
                    filter="pii",
                    kind=kind,
                    count=count,
                )
            )
    if filters.max_length is not None and len(text) > filters.max_length:
        original = len(text)
        text = text[: filters.max_length] + filters.marker
        decisions.append(
            allow(
                f"truncated {original} characters to {filters.max_length}",
                filters.max_length_rule or "default",
                filter="max_length",
                original_length=original,
                max_length=filters.max_length,
            )
        )
    return FilterResult(text, tuple(decisions))
