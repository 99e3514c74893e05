"""Input checks at a workflow's entry: text no checkpointer or database can store.

A NUL character cannot go into a PostgreSQL text column, and a lone surrogate (half of
a UTF-16 pair, e.g. from text decoded with `surrogateescape`) cannot be encoded as
UTF-8 at all, so neither can be checkpointed by any saver. The input is checkpointed
before the first node runs, so the check runs before the graph: `Workflow` replaces
each such character by U+FFFD and tells the supervisor, which ends the run `failed`
with the reason. Every back end (memory, SQLite, PostgreSQL) sees the same cleaned text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.graph.state import CompiledStateGraph

from podium.governance.writers import aone_writer, fenced, one_writer, writer_claim
from podium.graphs.outage import Outcome, StreamShape, afailing_softly, failing_softly

#: Key of the input that carries what the entry check found (read by the supervisor).
REJECTED_KEY = "input_problem"
REPLACEMENT = "\ufffd"
_BAD = re.compile("[\x00\ud800-\udfff]")


def describe_char(char: str) -> str:
    if char == "\x00":
        return "a NUL character (\\x00)"
    return f"a lone surrogate ({char!r})"


def scrub_text(text: str, where: str, problems: list[str]) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD; each kind found is
    described in `problems` (first position only)."""
    found = _BAD.search(text)
    if found is None:
        return text
    problems.append(
        f"{where} contains {describe_char(found.group())} at position {found.start()}; "
        "send valid UTF-8 text without NUL characters"
    )
    return _BAD.sub(REPLACEMENT, text)


def scrub(value: Any, where: str, problems: list[str]) -> Any:
    """`value` with every string in it (dicts, lists, message contents) scrubbed."""
    if isinstance(value, str):
        return scrub_text(value, where, problems)
    if isinstance(value, BaseMessage):
        content = scrub(value.content, f"{where} content", problems)
        return value if content is value.content else value.model_copy(update={"content": content})
    if isinstance(value, dict):
        out = {k: scrub(v, f"{where}.{k}" if where else str(k), problems) for k, v in value.items()}
        return value if all(out[k] is value[k] for k in value) else out
    if isinstance(value, list | tuple):
        items = [scrub(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, tuple) else items
    return value


def check_input(value: Any) -> Any:
    """The input of a run made storable: unchanged when clean, else scrubbed with the
    problems under `REJECTED_KEY` (a dict input only; other inputs, such as a resume
    `Command` or None, pass untouched)."""
    if not isinstance(value, dict):
        return value
    problems: list[str] = []
    cleaned = scrub(value, "", problems)
    if not problems:
        return value
    return {**cleaned, REJECTED_KEY: "; ".join(problems)}


class Workflow(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled podium workflow: LangGraph's compiled graph whose runs check their input
    at the entry (see the module docstring) and, when compiled by a runtime, hold their
    thread's writer lock while they run (`podium.governance.writers`) and end `failed`
    when their database stays unreachable (`podium.graphs.outage`). `invoke` and
    `ainvoke` run through `stream` and `astream`, so those two are the entry; copies
    (`with_config`) keep the class."""

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        checked = check_input(input)
        parent = super().stream
        claim = writer_claim(self.config, config, kwargs.get("context"))
        if claim is None:
            return parent(checked, config, **kwargs)
        outcome = Outcome(
            StreamShape.of(kwargs.get("stream_mode"), self.stream_mode, kwargs), claim
        )
        return failing_softly(
            outcome,
            lambda: one_writer(claim, lambda held: parent(checked, fenced(config, held), **kwargs)),
        )

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        checked = check_input(input)
        parent = super().astream
        claim = writer_claim(self.config, config, kwargs.get("context"))
        if claim is None:
            return parent(checked, config, **kwargs)
        outcome = Outcome(
            StreamShape.of(kwargs.get("stream_mode"), self.stream_mode, kwargs), claim
        )
        return afailing_softly(
            outcome,
            lambda: aone_writer(
                claim, lambda held: parent(checked, fenced(config, held), **kwargs)
            ),
        )

    @classmethod
    def of(cls, compiled: CompiledStateGraph[Any, Any, Any, Any]) -> Workflow:
        """`compiled` as a `Workflow` (same attributes, as `Pregel.copy` makes copies)."""
        attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
        return cls(**attrs)
