"""Every documented public name is importable from `podium`."""

import podium

DOCUMENTED = [
    "AgentSpec",
    "AgentRegistry",
    "Plan",
    "PlannedTask",
    "RunContext",
    "TaskStatus",
    "WorkflowState",
    "PodiumRuntime",
    "build_workflow",
    "build_research_brief",
    "get_workflow",
    "register_workflow",
    "open_runtime",
    "open_async_runtime",
    "PodiumError",
    "ConfigurationError",
    "DatabaseError",
    "PlanError",
    "RunError",
    "TaskFailed",
    "IllegalTransition",
    "ThreadNotFound",
    "UnknownAgentError",
    "UnknownWorkflowError",
]


def test_documented_names_are_exported():
    for name in DOCUMENTED:
        assert name in podium.__all__, name
        assert getattr(podium, name) is not None


def test_all_names_resolve():
    missing = [name for name in podium.__all__ if not hasattr(podium, name)]
    assert missing == []


def test_error_hierarchy():
    assert issubclass(podium.ConfigurationError, podium.PodiumError)
    assert issubclass(podium.UnknownAgentError, podium.ConfigurationError)
    assert issubclass(podium.TaskFailed, podium.RunError)
    assert issubclass(podium.DatabaseError, podium.PodiumError)
