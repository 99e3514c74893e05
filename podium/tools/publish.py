"""`publish_report`: writes a report file. A side effect, so policies gate it.

The file is written only inside `reports/`, never through a link: a `reports` folder that
is a symbolic link, a symbolic link or a hard link planted under it, or anything that is
not a regular file is refused, so a planted link cannot turn a report into a write elsewhere.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from langchain_core.tools import ToolException, tool

from podium.words import count

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
    data = content.encode("utf-8")
    _write_inside(REPORTS_DIR, name, data)
    return f"published {target.as_posix()} ({count(len(data), 'byte')})"


def _write_inside(folder: Path, name: str, data: bytes) -> None:
    """Write `folder/name` without following a link at either step (see the module)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ToolException(
                f"refused: {folder.as_posix()!r} is a symbolic link or not a folder; reports "
                f"are written only into a real {folder.as_posix()}/ folder"
            ) from None
        raise
    try:
        try:
            # O_NONBLOCK: a planted FIFO fails at once instead of hanging the run.
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ToolException(
                    f"refused: {(folder / name).as_posix()!r} is a symbolic link; remove it "
                    "(reports are never written through a link)"
                ) from None
            if exc.errno == errno.ENXIO:
                raise ToolException(
                    f"refused: {(folder / name).as_posix()!r} is not a plain file; remove it"
                ) from None
            raise
        with os.fdopen(fd, "wb") as out:
            info = os.fstat(out.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                raise ToolException(
                    f"refused: {(folder / name).as_posix()!r} is not a plain file of its own "
                    "(a hard link or a special file); remove it"
                )
            out.truncate(0)
            out.write(data)
    finally:
        os.close(dir_fd)
