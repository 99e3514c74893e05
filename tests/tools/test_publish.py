"""`publish_report` writes inside reports/ only: links planted there are refused."""

from __future__ import annotations

import os

import pytest
from langchain_core.tools import ToolException

from podium.tools.publish import publish_report


def publish(filename: str, content: str = "# Brief\n") -> str:
    return publish_report.func(filename=filename, content=content)


def test_a_report_is_written_into_reports(tmp_path):
    assert publish("brief.md", "# Brief\nok\n") == "published reports/brief.md (11 bytes)"
    assert (tmp_path / "reports" / "brief.md").read_text() == "# Brief\nok\n"
    # Publishing again replaces the report (no leftover tail from a longer first version).
    publish("brief.md", "# B\n")
    assert (tmp_path / "reports" / "brief.md").read_text() == "# B\n"


def test_a_symlink_planted_in_reports_is_refused_and_its_target_untouched(tmp_path):
    outside = tmp_path / "outside" / "victim.txt"
    outside.parent.mkdir()
    outside.write_text("precious")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "brief.md").symlink_to(outside)
    with pytest.raises(ToolException, match=r"'reports/brief.md' is a symbolic link; remove it"):
        publish("brief.md", "overwritten")
    assert outside.read_text() == "precious"
    # A dangling link would create the file outside: refused the same way.
    (tmp_path / "reports" / "new.md").symlink_to(tmp_path / "outside" / "created.md")
    with pytest.raises(ToolException, match="symbolic link"):
        publish("new.md")
    assert not (tmp_path / "outside" / "created.md").exists()


def test_a_reports_folder_that_is_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "reports").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ToolException, match="'reports' is a symbolic link or not a folder"):
        publish("brief.md")
    assert list(elsewhere.iterdir()) == []


def test_a_hard_link_or_a_fifo_in_reports_is_refused(tmp_path):
    outside = tmp_path / "victim.txt"
    outside.write_text("precious")
    (tmp_path / "reports").mkdir()
    os.link(outside, tmp_path / "reports" / "hard.md")
    with pytest.raises(ToolException, match="not a plain file of its own"):
        publish("hard.md", "overwritten")
    assert outside.read_text() == "precious"
    os.mkfifo(tmp_path / "reports" / "pipe.md")
    with pytest.raises(ToolException, match="not a plain file"):
        publish("pipe.md")


def test_the_refusal_is_what_the_worker_hands_the_model(tmp_path):
    from podium.graphs.worker import recoverable_tool_error

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "brief.md").symlink_to(tmp_path / "x.md")
    with pytest.raises(ToolException) as refused:
        publish("brief.md")
    assert recoverable_tool_error(refused.value).startswith(
        "Error: refused: 'reports/brief.md' is a symbolic link"
    )
