"""`search_corpus`: keyword search over the small markdown corpus shipped with podium."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "find",
        "facts",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "what",
        "how",
        "about",
        "this",
        "that",
        "these",
        "those",
        "over",
        "since",
        "most",
    ]
)


@dataclass(frozen=True, slots=True)
class Passage:
    source: str
    text: str


def _terms(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower()) if w not in _STOP}


@lru_cache(maxsize=1)
def load_corpus() -> tuple[Passage, ...]:
    """Every sentence line of the bundled corpus, with its file name."""
    passages = []
    folder = resources.files("podium.tools") / "corpus"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        for line in entry.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and not line.startswith("Sample corpus"):
                passages.append(Passage(entry.name, line))
    return tuple(passages)


def search(query: str, limit: int = 4) -> list[Passage]:
    """Passages ranked by how many query terms they share (ties keep corpus order)."""
    wanted = _terms(query)
    scored = [(len(wanted & _terms(p.text)), i, p) for i, p in enumerate(load_corpus())]
    hits = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    return [p for _, _, p in hits[:limit]]


#: The data namespace of the bundled corpus (policies grant it as a data scope).
NAMESPACE = "corpus:energy"


@tool
def search_corpus(query: str, config: RunnableConfig) -> str:
    """Search the document corpus for sentences about a topic.

    Args:
        query: A few keywords, e.g. "heat pump sales".

    Returns:
        Up to four matching sentences, one per line, each prefixed with its [source file].
    """
    from podium.governance.binding import check_data_scope

    check_data_scope(config, NAMESPACE)
    hits = search(query)
    if not hits:
        return f"No passages match {query!r}. Try other keywords."
    return "\n".join(f"[{p.source}] {p.text}" for p in hits)
