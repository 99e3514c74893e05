"""Example tools shipped with podium."""

from podium.tools.calculator import calculate
from podium.tools.corpus import search_corpus
from podium.tools.human import ask_human
from podium.tools.publish import publish_report

__all__ = ["ask_human", "calculate", "publish_report", "search_corpus"]
