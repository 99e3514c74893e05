"""Output filters: regex redaction, personal data, truncation; one decision per rewrite."""

from __future__ import annotations

import pytest

from podium.policies import CallScope, filter_output, output_filters
from podium.policies._pii import luhn_valid, redact

EMAILS = [
    ("write to ana@example.com today", "write to [email redacted] today", 1),
    ("a.b+tag@mail.ex-ample.co.uk, x@y.io.", "[email redacted], [email redacted].", 2),
    ("not emails: a@b, @x.com, user@localhost", "not emails: a@b, @x.com, user@localhost", 0),
]

PHONES = [
    ("call +1 (555) 123-4567", "call [phone redacted]", 1),
    ("+44 20 7946 0958 or +49 30 1234567", "[phone redacted] or [phone redacted]", 2),
    ("555-123-4567 / 555.123.4567 / (555) 123 4567 / 555 123 4567", None, 4),
    ("on 2024-01-15 pi 3.14159265 n 1,234,567 v1.2.3 local 555-1234", None, 0),
    ("+12 is too short and order 1234567890 is an id", None, 0),
]

CARDS = [
    ("visa 4111 1111 1111 1111 ok", "visa [card redacted] ok", 1),
    ("mastercard 5555-5555-5555-4444", "mastercard [card redacted]", 1),
    ("amex 378282246310005.", "amex [card redacted].", 1),
    ("bad checksum 4111 1111 1111 1112", None, 0),
    ("order 1234 4111 1111 1111 1111", "order 1234 [card redacted]", 1),
    ("too long 12345678901234567890", None, 0),
    ("too short 4111 1111 111", None, 0),
]


@pytest.mark.parametrize(
    ("kind", "text", "expected", "count"),
    [("email", *case) for case in EMAILS]
    + [("phone", *case) for case in PHONES]
    + [("card", *case) for case in CARDS],
)
def test_pii_redaction(kind, text, expected, count):
    result, found = redact(kind, text)
    assert found == count
    assert result.count(f"[{kind} redacted]") == count
    if expected is not None:
        assert result == expected
    elif count == 0:
        assert result == text


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(digits, valid):
    assert luhn_valid(digits) is valid


POLICY = """
global:
  output:
    redact: [{pattern: 'sk-[A-Za-z0-9]{8,}', replacement: "[api key]"}]
    pii: {email: true, phone: true, card: true}
    max_length: 40
agents:
  crm:
    output:
      pii: {email: false}
      redact: [{pattern: 'CUST-\\d+'}]
tools:
  lookup:
    output:
      max_length: 12
      marker: "..."
"""


def test_unchanged_text_has_no_decisions(policy):
    result = filter_output(policy(POLICY), CallScope(), "nothing to hide")
    assert (result.text, result.decisions, result.changed) == ("nothing to hide", (), False)


def test_every_rewrite_is_a_decision_with_its_rule(policy):
    text = "key sk-ABCDEFGH12 mail ana@example.com"
    result = filter_output(policy(POLICY), CallScope(), text)
    assert result.text == "key [api key] mail [email redacted]"
    assert [(d.rule, d.details["filter"], d.details["count"]) for d in result.decisions] == [
        ("global.output.redact[0]", "redact", 1),
        ("global.output.pii.email", "pii", 1),
    ]
    assert all(d.allowed for d in result.decisions)


def test_redactions_add_up_and_pii_kinds_are_decided_per_kind(policy):
    text = "CUST-991 ana@example.com sk-ABCDEFGH12"
    result = filter_output(policy(POLICY), CallScope(agent="crm"), text)
    assert result.text == "[REDACTED] ana@example.com [api key]"
    assert {d.rule for d in result.decisions} == {
        "global.output.redact[0]",
        "agents.crm.output.redact[0]",
    }
    filters = output_filters(policy(POLICY), CallScope(agent="crm"))
    assert filters.pii == (("card", "global.output.pii.card"), ("phone", "global.output.pii.phone"))


def test_truncation_comes_last_and_tool_scope_wins(policy):
    result = filter_output(policy(POLICY), CallScope(), "x" * 30 + " ana@example.com")
    assert result.text == "x" * 30 + " [email re [truncated]"
    assert result.decisions[-1].rule == "global.output.max_length"
    assert result.decisions[-1].details["original_length"] == 47
    tool_result = filter_output(policy(POLICY), CallScope(), "0123456789abcdef", tool="lookup")
    assert tool_result.text == "0123456789ab..."
    assert tool_result.decisions[0].rule == "tools.lookup.output.max_length"
    answer = filter_output(policy(POLICY), CallScope(), "0123456789abcdef")
    assert answer.text == "0123456789abcdef"  # the tool's limit does not apply to answers


def test_card_and_phone_in_one_text(policy):
    text = "card 4111 1111 1111 1111, phone +1 555 123 4567"
    ps = policy("global: {output: {pii: {card: true, phone: true}}}")
    result = filter_output(ps, CallScope(), text)
    assert result.text == "card [card redacted], phone [phone redacted]"
    assert [d.details["kind"] for d in result.decisions] == ["card", "phone"]


def test_no_output_settings_means_no_filters(policy):
    result = filter_output(policy("{}"), CallScope(), "ana@example.com " * 1000)
    assert not result.changed
