"""podium: a governed orchestration runtime for fleets of LangGraph agents."""

from podium.context import RunContext
from podium.errors import (
    ConfigurationError,
    DatabaseError,
    IllegalTransition,
    PlanError,
    PodiumError,
    RunError,
    TaskFailed,
    ThreadNotFound,
    UnknownAgentError,
    UnknownWorkflowError,
)
from podium.graphs import (
    build_research_brief,
    build_workflow,
    get_workflow,
    register_workflow,
)
from podium.lifecycle import TaskStatus
from podium.plan import Plan, PlannedTask
from podium.registry import AgentRegistry, AgentSpec
from podium.runtime import PodiumRuntime, open_async_runtime, open_runtime
from podium.state import WorkflowState

__version__ = "0.1.0"

__all__ = [
    "AgentRegistry",
    "AgentSpec",
    "ConfigurationError",
    "DatabaseError",
    "IllegalTransition",
    "Plan",
    "PlanError",
    "PlannedTask",
    "PodiumError",
    "PodiumRuntime",
    "RunContext",
    "RunError",
    "TaskFailed",
    "TaskStatus",
    "ThreadNotFound",
    "UnknownAgentError",
    "UnknownWorkflowError",
    "WorkflowState",
    "__version__",
    "build_research_brief",
    "build_workflow",
    "get_workflow",
    "open_async_runtime",
    "open_runtime",
    "register_workflow",
]
