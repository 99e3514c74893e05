"""Nodes of the workflow graph: supervisor, task (worker wrapper), aggregate."""

from podium.nodes.aggregate import aggregate
from podium.nodes.supervisor import Supervisor
from podium.nodes.task import make_task_node

__all__ = ["Supervisor", "aggregate", "make_task_node"]
