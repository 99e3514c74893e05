"""Policies: schema, YAML loader and pure evaluate_* functions (enforced by the governor)."""

__all__: list[str] = []
