"""The answer as it streams, on the CLI's standard output.

`podium run` and `podium demo` stream a run's progress events and its model tokens
(`podium.streaming`). At a terminal the answer's tokens are printed as they arrive; the
report at the end prints the stored answer again only when it differs from what was
printed (several sink tasks, an output filter, a failed run). Anywhere else (a pipe, a
file, a test) nothing is printed while the run works, so the output is the same as a run
that did not stream: the answer, the task table and the usage table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from podium.streaming import STREAM_MODES, AnswerText, Token


def stream_run(app: Any, inputs: Any, config: Any, context: Any) -> Iterator[Any]:
    """The run's stream: progress events and the tokens of every task's model calls."""
    stream: Iterator[Any] = app.stream(
        inputs, config, context=context, stream_mode=STREAM_MODES, subgraphs=True
    )
    return stream


class AnswerPrinter:
    """Prints the answer's tokens to `out` as they arrive, when `live`.

    It follows one reply at a time: tokens of a sink task's reply are printed; when
    another reply starts (the next sink task, or the same task's reply after a tool call)
    the line is closed and the new reply printed after it. Tokens of tasks that feed
    others are not printed (the progress lines say what those tasks do).
    """

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        self.text = AnswerText()
        self._shown: tuple[str, str] | None = None  # (task id, message id) being printed
        self._printed = ""  # the text of the reply printed last
        self._open = False  # the last line printed has no newline yet

    def progress(self, event: Mapping[str, Any]) -> None:
        self.text.progress(event)

    def token(self, token: Token) -> None:
        added = self.text.add(token)
        if not self.live or not self.text.is_answer(token.task_id):
            return
        key = (token.task_id, token.message_id)
        if key != self._shown:
            if not added:
                return
            if self._shown is not None:
                self._write("\n\n")
            self._shown, self._printed = key, ""
        if added:
            self._printed = self.text.task_text(token.task_id)
            self._write(added)

    def finish(self, answer: str) -> bool:
        """Close the streamed line; returns whether `answer` is what was printed (then the
        report need not print it again)."""
        if self._shown is None:
            return False
        self.break_line()
        same = self._printed.strip() == (answer or "").strip()
        if not same:
            self._write("\n")  # the stored answer follows, apart from the streamed draft
        self._shown = None
        return same

    def break_line(self) -> None:
        """End an open line of tokens (a progress line is about to be printed)."""
        if self._open:
            self._write("\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self._open = not text.endswith("\n")


def drain(
    items: Iterable[tuple[str, Any]], progress: Any, printer: AnswerPrinter
) -> Mapping[str, Any] | None:
    """Hand each item of `podium.streaming.parts` to the progress lines or the printer;
    returns the run's last `run_finished` event, if it sent one."""
    finished = None
    for kind, data in items:
        if kind == "event":
            if data.get("event") == "run_finished":
                finished = data
            printer.progress(data)
            if progress is not None:
                printer.break_line()
                progress(data)
        else:
            printer.token(data)
    return finished
