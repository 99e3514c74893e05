"""Tracing: Langfuse (OpenTelemetry) spans of runs, with masking of sensitive values."""

from podium.tracing.tracer import LangfuseSettings, Tracer, settings_from_env, tracing_config

__all__ = ["LangfuseSettings", "Tracer", "settings_from_env", "tracing_config"]
