"""Masking of personal data in spans before Langfuse exports them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import podium.policies._pii as _pii

#: What a string must contain for a kind to be found in it at all (a necessary condition
#: of `_pii`'s patterns: an e-mail has "@"; a phone number is international, with "+", or
#: ends in "ddd-dddd"). Most exported strings are JSON with neither, and these checks cost
#: a fraction of the patterns' scans, so those strings skip that kind's redaction.
_PHONE_TAIL = re.compile(r"\d{3}[ .-]\d{4}")
_MAY_HOLD: dict[str, Callable[[str], bool]] = {
    "email": lambda text: "@" in text,
    "phone": lambda text: "+" in text or _PHONE_TAIL.search(text) is not None,
}


def redact_spans(*, params: Any, **_: Any) -> Any:
    """Langfuse `mask_otel_spans`: personal data in every exported string attribute
    (inputs, outputs, metadata, status messages) replaced by podium's PII markers.

    It runs on the export thread, not on the run's, so it costs the run nothing.
    """
    from langfuse.types import MaskOtelSpansResult, OtelSpanPatch

    patches = {}
    for identifier, span in params.spans.items():
        changed: dict[str, Any] = {}
        for key, value in span.attributes.items():
            if isinstance(value, str):
                clean = _redact_text(value)
                if clean != value:
                    changed[key] = clean
            elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                cleaned = [_redact_text(v) for v in value]
                if cleaned != list(value):
                    changed[key] = cleaned
        if changed:
            patches[identifier] = OtelSpanPatch(set_attributes=changed)
    return MaskOtelSpansResult(span_patches=patches)


def _redact_text(text: str) -> str:
    for kind in _pii.KINDS:
        may_hold = _MAY_HOLD.get(kind)
        if may_hold is None or may_hold(text):
            text, _ = _pii.redact(kind, text)
    return text
