"""`publish_report`: writes a report file. A side effect, so policies gate it."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.tools import ToolException, tool

#: Where reports go, relative to the working directory of the process.
REPORTS_DIR = Path("reports")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,80}\.md$")


@tool
def publish_report(filename: str, content: str) -> str:
    """Publish a finished report as a markdown file.

    Args:
        filename: A file name such as "heat-pumps-brief.md" (letters, digits, '-', '_').
        content: The full markdown text of the report.

    Returns:
        Where the report was published and its size.
    """
    name = Path(filename).name
    if not _NAME.match(name):
        raise ToolException(
            f"bad report file name {filename!r}; use letters, digits, '-' or '_' and end in .md"
        )
    target = REPORTS_DIR / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    return f"published {target.as_posix()} ({len(content.encode())} bytes)"
