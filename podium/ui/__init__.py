"""Helpers of the Streamlit app (`app.py`): session state, display rows, approval cards.

Nothing here imports Streamlit: the page script draws what these functions return.
"""

from podium.ui.actions import AnyWorkbench, apply_link, choose_workflow, perform
from podium.ui.backends import open_workbench
from podium.ui.board import COLUMNS, BoardRow, LiveBoard, board_rows, records
from podium.ui.cards import VERBS, EditError, GateCard, decision_for, gate_card
from podium.ui.insight import (
    ChainStatus,
    chain_status,
    cost_chart,
    cost_table,
    mermaid_block,
    summarize,
    timeline_rows,
    trace_link,
)
from podium.ui.live import LiveAnswer, Writing, is_token
from podium.ui.session import (
    Action,
    ChatSession,
    Continue,
    Decide,
    Notice,
    Send,
    new_thread_id,
    session_of,
)
from podium.ui.settings import (
    DEFAULT_MODEL,
    DEFAULT_ROLES,
    DEFAULT_USER,
    ROLE_CHOICES,
    SERVER_MODEL,
    AppConfig,
    UserSettings,
    config_from_env,
)
from podium.ui.view import (
    ChatLine,
    ThreadEntry,
    ThreadView,
    chat_lines,
    thread_entries,
    thread_view,
)
from podium.ui.workbench import (
    RunOutcome,
    Workbench,
    describe_error,
    workflow_names,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_MODEL",
    "DEFAULT_ROLES",
    "DEFAULT_USER",
    "ROLE_CHOICES",
    "SERVER_MODEL",
    "VERBS",
    "Action",
    "AnyWorkbench",
    "AppConfig",
    "BoardRow",
    "ChainStatus",
    "ChatLine",
    "ChatSession",
    "Continue",
    "Decide",
    "EditError",
    "GateCard",
    "LiveAnswer",
    "LiveBoard",
    "Notice",
    "RunOutcome",
    "Send",
    "ThreadEntry",
    "ThreadView",
    "UserSettings",
    "Workbench",
    "Writing",
    "apply_link",
    "board_rows",
    "chain_status",
    "chat_lines",
    "choose_workflow",
    "config_from_env",
    "cost_chart",
    "cost_table",
    "decision_for",
    "describe_error",
    "gate_card",
    "is_token",
    "mermaid_block",
    "new_thread_id",
    "open_workbench",
    "perform",
    "records",
    "session_of",
    "summarize",
    "thread_entries",
    "thread_view",
    "timeline_rows",
    "trace_link",
    "workflow_names",
]
