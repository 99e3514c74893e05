"""Nodes of the workflow graph: supervisor, task (worker wrapper), aggregate."""

from podium.nodes.aggregate import make_aggregate
from podium.nodes.supervisor import Supervisor
from podium.nodes.task import make_task_node

__all__ = ["Supervisor", "make_aggregate", "make_task_node"]
