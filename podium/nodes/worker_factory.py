"""A custom worker made per task by the agent's factory: `AgentSpec(graph=factory)`.

The factory `graph(tools, model)` receives the task's governed copies of the agent's
tools and the governed model, bound to the task's scope and the runtime's binding, and
returns the worker graph (compiled or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import StateGraph

from podium.errors import ConfigurationError
from podium.governance.governed_model import GovernedChatModel
from podium.governance.governed_tool import governed_tools
from podium.registry import AgentSpec


@dataclass(frozen=True, slots=True)
class WorkerFactory:
    """A custom worker built per task by the agent's factory `graph(tools, model)`.

    The factory receives the task's governed copies of the agent's tools and the
    governed model, bound to the task's scope and the runtime's binding.
    """

    spec: AgentSpec
    model: BaseChatModel

    def build(self, scope: Any, binding: Any) -> Any:
        """The worker graph of one task (compiled)."""
        tools = governed_tools(list(self.spec.tools), scope, binding)
        model = GovernedChatModel(
            inner=self.model, agent=self.spec.name, scope=scope, binding=binding
        )
        graph = self.spec.graph(tools, model)  # type: ignore[misc]
        if isinstance(graph, StateGraph):
            graph = graph.compile()
        if not hasattr(graph, "invoke") or not hasattr(graph, "ainvoke"):
            raise ConfigurationError(
                f"agent {self.spec.name!r}: the graph factory returned "
                f"{type(graph).__name__}, not a LangGraph graph; return e.g. "
                "create_react_agent(model, tools)"
            )
        return graph
