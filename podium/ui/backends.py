"""Which workbench the app gets: a LangGraph server's or the embedded runtime's."""

from __future__ import annotations

from collections.abc import Mapping

from podium.ui.remote import RemoteWorkbench
from podium.ui.settings import AppConfig
from podium.ui.workbench import Workbench


def open_workbench(
    config: AppConfig, *, environ: Mapping[str, str] | None = None
) -> Workbench | RemoteWorkbench:
    """The workbench `config` asks for: a LangGraph server's when `server_url` is set
    (`podium.ui.remote.RemoteWorkbench`), else the embedded runtime's.

    Raises:
        ServerError: the server is unreachable or refuses the credential.
        DatabaseError: the embedded database cannot be opened.
    """
    if config.remote:
        return RemoteWorkbench(config)
    return Workbench(config, environ=environ)
