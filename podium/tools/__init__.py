"""Example tools shipped with podium."""

from podium.tools.calculator import calculate
from podium.tools.corpus import search_corpus

__all__ = ["calculate", "search_corpus"]
