"""The runtime: database, checkpointers, podium's stores and the governor."""

from podium.runtime.core import PodiumRuntime, open_async_runtime, open_runtime
from podium.runtime.governor import Governor
from podium.runtime.threads import ThreadIndex, ThreadInfo
from podium.runtime.urls import DEFAULT_URL, mask, parse_url

__all__ = [
    "DEFAULT_URL",
    "Governor",
    "PodiumRuntime",
    "ThreadIndex",
    "ThreadInfo",
    "mask",
    "open_async_runtime",
    "open_runtime",
    "parse_url",
]
