"""podium: a governed orchestration runtime for fleets of LangGraph agents."""

from podium.context import RunContext
from podium.errors import (
    AlreadyDecided,
    AuditError,
    BreakerKeyError,
    BudgetExceeded,
    CallTimeout,
    CircuitOpen,
    ConfigurationError,
    DatabaseError,
    DeadLetterNotFound,
    DeadLetterStateError,
    EffectConflict,
    EffectNotFound,
    EffectStateError,
    GateError,
    GateForbidden,
    IllegalTransition,
    PlanError,
    PodiumError,
    PolicyError,
    PolicyViolation,
    RateLimited,
    ReplayError,
    RunError,
    TaskFailed,
    ThreadNotFound,
    TransientError,
    UnknownAgentError,
    UnknownWorkflowError,
)
from podium.gates.decision import PendingGate, adecide, apending_gates, decide, pending_gates
from podium.gates.request import Decision, GateRequest
from podium.graphs import (
    build_research_brief,
    build_workflow,
    get_workflow,
    register_workflow,
)
from podium.lifecycle import TaskStatus
from podium.plan import Plan, PlannedTask
from podium.policies import PolicySet, load_policies
from podium.registry import AgentRegistry, AgentSpec
from podium.runtime import PodiumRuntime, open_async_runtime, open_runtime
from podium.state import WorkflowState

__version__ = "0.1.0"

__all__ = [
    "AgentRegistry",
    "AgentSpec",
    "AlreadyDecided",
    "AuditError",
    "BreakerKeyError",
    "BudgetExceeded",
    "CallTimeout",
    "CircuitOpen",
    "ConfigurationError",
    "DatabaseError",
    "DeadLetterNotFound",
    "DeadLetterStateError",
    "Decision",
    "EffectConflict",
    "EffectNotFound",
    "EffectStateError",
    "GateError",
    "GateForbidden",
    "GateRequest",
    "IllegalTransition",
    "PendingGate",
    "Plan",
    "PlanError",
    "PlannedTask",
    "PodiumError",
    "PodiumRuntime",
    "PolicyError",
    "PolicySet",
    "PolicyViolation",
    "RateLimited",
    "ReplayError",
    "RunContext",
    "RunError",
    "TaskFailed",
    "TaskStatus",
    "ThreadNotFound",
    "TransientError",
    "UnknownAgentError",
    "UnknownWorkflowError",
    "WorkflowState",
    "__version__",
    "adecide",
    "apending_gates",
    "build_research_brief",
    "build_workflow",
    "decide",
    "get_workflow",
    "load_policies",
    "open_async_runtime",
    "open_runtime",
    "pending_gates",
    "register_workflow",
]
