"""podium's stores: one module or package per table family, all on one `Database`."""

from podium.stores.replies import ModelReplies, TaskKey
from podium.stores.services import Services

__all__ = ["ModelReplies", "Services", "TaskKey"]
