"""Governance: the governor (model calls), the tool-call path, the guard, recovery, usage."""

from podium.governance.binding import Binding, bound, check_data_scope
from podium.governance.governor import Governor

__all__ = ["Binding", "Governor", "bound", "check_data_scope"]
