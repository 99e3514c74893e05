"""Masking of personal data in spans before Langfuse exports them."""

from __future__ import annotations

from typing import Any

from podium.policies import _pii


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
        text, _ = _pii.redact(kind, text)
    return text
