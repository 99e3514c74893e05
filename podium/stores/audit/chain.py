"""The hash chain of the audit log: canonical rows, their digests, and the verify walk.

A row's hash is SHA-256 (or HMAC-SHA256 with the key) of the canonical JSON of every
stored column except `hash` itself: sorted keys, no whitespace, UTF-8, with `payload` as
a JSON object. `prev_hash` is one of those columns, so each hash covers its predecessor;
the first row of a tenant's chain has `prev_hash` GENESIS. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from podium.stores.audit.events import ChainReport, Head, Problem, canonical_json

GENESIS = "0" * 64
SHA256, HMAC = "sha256", "hmac-sha256"
MODES = (SHA256, HMAC)
#: The stored columns, in table order; all but `hash` are hashed.
COLUMNS = (
    "tenant_id",
    "seq",
    "at_us",
    "workflow",
    "thread_id",
    "run_id",
    "task_id",
    "checkpoint_id",
    "actor_type",
    "actor_name",
    "kind",
    "payload",
    "prev_hash",
    "mode",
    "hash",
)
# How far ahead to look for a row's original sequence number when rows were deleted and
# the rest renumbered; only runs once, on the first broken link.
_RENUMBER_SEARCH = 1000


def digest(row: Mapping[str, Any], mode: str, key: bytes | None) -> str | None:
    """The hash `row` should carry in `mode`; None if it cannot be computed.

    None when the payload is not JSON (the row was edited) or HMAC is asked without a key.
    """
    try:
        fields = {name: row[name] for name in COLUMNS if name != "hash"}
        fields["payload"] = json.loads(row["payload"])
        message = canonical_json(fields).encode("utf-8")
    except (TypeError, ValueError):
        return None
    if mode == SHA256:
        return hashlib.sha256(message).hexdigest()
    if mode == HMAC and key is not None:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return None


#: The hashed columns whose names sort before and after "payload".
_BEFORE_PAYLOAD = tuple(n for n in COLUMNS if n < "payload" and n != "hash")
_AFTER_PAYLOAD = tuple(n for n in COLUMNS if n > "payload" and n != "hash")


def seal(row: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """Set `mode` and `hash` on a new row (HMAC when there is a key).

    The row's `payload` is canonical JSON already (`AuditEvent` made it so), so the
    message `digest` would build is spliced around it instead of parsing it again: the
    same text, byte for byte.
    """
    row["mode"] = HMAC if key is not None else SHA256
    before = canonical_json({name: row[name] for name in _BEFORE_PAYLOAD})
    after = canonical_json({name: row[name] for name in _AFTER_PAYLOAD})
    message = f'{before[:-1]},"payload":{row["payload"]},{after[1:]}'.encode()
    if key is None:
        row["hash"] = hashlib.sha256(message).hexdigest()
    else:
        row["hash"] = hmac.new(key, message, hashlib.sha256).hexdigest()
    return row


def check_chain(
    tenant_id: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: bytes | None,
    seq_of_hash: Callable[[str], int | None],
    head: Head | None = None,
) -> ChainReport:
    """Walk a tenant's rows in (seq, hash) order and report the first problem.

    Args:
        seq_of_hash: The sequence number of the row whose stored hash is the argument, if
            any; used only to explain a broken link (reordered, inserted or deleted).
        head: A head stored earlier; the chain must still reach it with the same hash.
    """
    count, last_hash, head_seen = 0, GENESIS, False
    for row in rows:
        expected = count + 1
        problem = _position(row, expected) or _check_row(row, expected, last_hash, key)
        if problem is None and row["prev_hash"] != last_hash:
            problem = _broken_link(row, seq_of_hash, key)
        if problem is not None and problem.kind == "inserted" and problem.seq < row["seq"]:
            # Rows before this one were inserted: the chain is sound up to the row it links to.
            count, last_hash = problem.seq - 1, row["prev_hash"]
        if problem is not None:
            return ChainReport(tenant_id, count, Head(tenant_id, count, last_hash), problem)
        count, last_hash = expected, row["hash"]
        head_seen = head_seen or (head is not None and head.hash == last_hash)
    problem = _against_head(head, count, last_hash, head_seen) if head else None
    return ChainReport(tenant_id, count, Head(tenant_id, count, last_hash), problem)


def _position(row: Mapping[str, Any], expected: int) -> Problem | None:
    seq = row["seq"]
    if seq < 1:
        return Problem(seq, "inserted", f"sequence {seq} is below 1; the row was inserted")
    if seq < expected:  # rows come sorted, so this is a repeat of the previous number
        return Problem(seq, "inserted", f"two rows have sequence {seq}; one was inserted")
    if seq > expected:
        missing = _span(expected, seq - 1, "missing")
        return Problem(expected, "deleted", f"{missing} (the next row is {seq})")
    return None


def _check_row(
    row: Mapping[str, Any], seq: int, last_hash: str, key: bytes | None
) -> Problem | None:
    """Mode and content problems; a broken link whose content is fine is left to the caller."""
    mode = row["mode"]
    if mode not in MODES:
        return Problem(seq, "edited", f"row {seq} has unknown hash mode {mode!r}")
    if key is None and mode == HMAC:
        return Problem(
            seq,
            "key_required",
            f"row {seq} is HMAC-signed; verify with the key (set PODIUM_AUDIT_KEY)",
        )
    if key is not None and mode == SHA256:
        return Problem(
            seq, "unkeyed", f"row {seq} was written without the key (plain SHA-256, not HMAC)"
        )
    if digest(row, mode, key) == row["hash"]:
        return None
    if mode == HMAC and digest(row, SHA256, None) == row["hash"]:
        return Problem(
            seq,
            "unkeyed",
            f"row {seq} was rewritten without the key: its hash is plain SHA-256, not the HMAC",
        )
    if row["prev_hash"] == last_hash:
        wrong_key = " (or verify was given another key)" if mode == HMAC else ""
        return Problem(seq, "edited", f"row {seq}'s content does not match its hash{wrong_key}")
    return None


def _broken_link(
    row: Mapping[str, Any], seq_of_hash: Callable[[str], int | None], key: bytes | None
) -> Problem:
    """Explain why row `seq` does not link to the row before it."""
    seq, prev = row["seq"], row["prev_hash"]
    target = 0 if prev == GENESIS else seq_of_hash(prev)
    if target is None:
        moved = _original_seq(row, key)
        if moved is not None:
            return Problem(
                seq,
                "deleted",
                f"row {seq} was row {moved} (its hash fits there): rows before it were "
                "deleted and the rest renumbered",
            )
        if digest(row, row["mode"], key) == row["hash"]:
            return Problem(
                seq, "inserted", f"row {seq} links to no row of the chain; it was inserted"
            )
        return Problem(seq, "edited", f"row {seq}'s content and previous hash were changed")
    if target >= seq:
        return Problem(seq, "reordered", f"row {seq} links to row {target}, which comes after it")
    if target < seq - 1:
        link = f"row {target}" if target else "the start of the chain"
        extra = _span(target + 1, seq - 1, "inserted")
        return Problem(target + 1, "inserted", f"row {seq} links to {link}: {extra}")
    return Problem(seq, "edited", f"row {seq}'s previous hash does not match row {seq - 1}")


def _span(first: int, last: int, state: str) -> str:
    """Say which rows are missing or were inserted, e.g. "rows 5..6 were inserted"."""
    verb = {"missing": ("is", "are"), "inserted": ("was", "were")}[state]
    if first == last:
        return f"row {first} {verb[0]} {state}"
    return f"rows {first}..{last} {verb[1]} {state}"


def _original_seq(row: Mapping[str, Any], key: bytes | None) -> int | None:
    """The later sequence number under which the row's hash verifies, if any."""
    for candidate in range(row["seq"] + 1, row["seq"] + 1 + _RENUMBER_SEARCH):
        if digest({**row, "seq": candidate}, row["mode"], key) == row["hash"]:
            return candidate
    return None


def _against_head(head: Head, count: int, last_hash: str, seen: bool) -> Problem | None:
    if head.seq is None:
        if seen or head.hash == GENESIS:
            return None
        return Problem(
            count + 1,
            "head_missing",
            f"no row has the stored head hash {head.hash}: the chain was truncated or rewritten",
        )
    if count < head.seq:
        return Problem(
            count + 1,
            "truncated",
            f"the chain ends at {count} but the stored head is at {head.seq}: "
            f"rows {count + 1}..{head.seq} were removed",
        )
    if not seen and not (head.seq == 0 and head.hash == GENESIS):
        return Problem(
            head.seq,
            "rewritten",
            f"row {head.seq} does not carry the stored head hash {head.hash}: "
            "history up to it was rewritten",
        )
    return None
