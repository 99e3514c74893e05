"""AgentSpec and AgentRegistry: the agents of a workflow, validated when it is built."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from podium.errors import ConfigurationError, UnknownAgentError

#: Node names the workflow graph uses itself; agents cannot take them.
RESERVED_NAMES = frozenset({"supervisor", "aggregate", "FINISH", "__start__", "__end__"})


class AgentSpec(BaseModel):
    """One specialised agent.

    Attributes:
        name: Unique within the workflow; also the worker node's name.
        description: What the agent is for; the supervisor plans from it.
        capabilities: Short tags ("research", "math") that help the supervisor route.
        tools: LangChain tools (or plain functions, turned into tools) the agent may call.
        model: An `init_chat_model` string ("openai:gpt-4o-mini"), "demo", a chat model
            object, a list of those (the first is used; each next one takes over when the
            one before it is down), or None for the workflow default.
        fallback: Name of the agent that takes over when this one fails for good. An agent
            named as a fallback is kept for that: the planner and the router never give
            it a task of its own (a static `Plan` still may).
        max_steps: Most model calls the agent may make for one task.
        timeout: Seconds one task may take, or None for no limit.
        graph: The worker instead of the built-in model/tool loop. Either a factory
            `graph(tools, model) -> graph` (e.g. `lambda tools, model:
            create_react_agent(model, tools)`), called at the start of each task with
            podium's governed copies of `tools` and the governed `model`, so every call
            goes through podium's decisions; or a LangGraph graph (compiled or not),
            whose own tools a callback guard vets (a compiled podium workflow there makes
            recursive delegation).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    description: str = ""
    capabilities: list[str] = Field(default_factory=list)
    tools: list[Any] = Field(default_factory=list)
    model: str | BaseChatModel | list[str | BaseChatModel] | None = None
    fallback: str | None = None
    max_steps: int = Field(default=8, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    graph: Any | None = None

    @field_validator("model")
    @classmethod
    def _some_model(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("an empty model list; name at least one model, or None")
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _coerce_tools(cls, value: Any) -> list[BaseTool]:
        tools = []
        for item in value or []:
            if isinstance(item, BaseTool):
                tools.append(item)
            elif callable(item):
                tools.append(as_tool(item))
            else:
                raise ValueError(f"tool {item!r} is neither a LangChain tool nor a function")
        return tools

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]


class AgentRegistry:
    """The validated, ordered set of agents of one workflow."""

    def __init__(self, agents: Sequence[AgentSpec]) -> None:
        self._agents: dict[str, AgentSpec] = {}
        for spec in agents:
            if not isinstance(spec, AgentSpec):
                raise ConfigurationError(
                    f"expected podium.AgentSpec, got {type(spec).__name__}: {spec!r}"
                )
            if spec.name in self._agents:
                raise ConfigurationError(
                    f"duplicate agent name {spec.name!r}; give every agent a unique name"
                )
            if spec.name in RESERVED_NAMES:
                raise ConfigurationError(
                    f"agent name {spec.name!r} is reserved by the workflow graph; "
                    f"rename it (reserved: {', '.join(sorted(RESERVED_NAMES))})"
                )
            self._agents[spec.name] = spec
        if not self._agents:
            raise ConfigurationError("a workflow needs at least one agent")
        self._validate()

    def _validate(self) -> None:
        for spec in self._agents.values():
            for i, tool in enumerate(spec.tools):
                if not tool.name or not tool.name.strip():
                    raise ConfigurationError(
                        f"agent {spec.name!r} has a tool with an empty name (tools[{i}]); "
                        "give the tool a name"
                    )
            if len(set(spec.tool_names)) != len(spec.tool_names):
                twice = sorted({n for n in spec.tool_names if spec.tool_names.count(n) > 1})
                raise ConfigurationError(
                    f"agent {spec.name!r} lists tool {twice[0]!r} more than once; remove the "
                    "duplicate or rename one of the tools"
                )
            if spec.graph is not None and spec.tools and not is_factory(spec.graph):
                raise ConfigurationError(
                    f"agent {spec.name!r} has both graph= and tools=; a custom graph brings "
                    "its own tools. To have podium hand the tools over governed, pass a "
                    "factory: graph=lambda tools, model: create_react_agent(model, tools)"
                )
            if spec.fallback is not None:
                if spec.fallback not in self._agents:
                    raise UnknownAgentError(
                        spec.fallback, self._agents, where=f"fallback of agent {spec.name!r}"
                    )
                if spec.fallback == spec.name:
                    raise ConfigurationError(
                        f"agent {spec.name!r} names itself as its fallback; name another agent "
                        "or remove the fallback"
                    )
        for name in self._agents:
            chain = self.fallback_chain(name)
            if chain and chain[-1] in (name, *chain[:-1]):
                raise ConfigurationError(
                    f"fallback cycle: {' -> '.join([name, *chain])}; end the chain at an "
                    "agent without a fallback"
                )

    def fallback_chain(self, name: str) -> list[str]:
        """The agents that take over from `name`, in order (stops at the first repeat)."""
        chain: list[str] = []
        current = self._agents[name].fallback
        while current is not None:
            chain.append(current)
            if current == name or chain.count(current) > 1:
                break
            current = self._agents[current].fallback
        return chain

    def get(self, name: str) -> AgentSpec:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgentError(name, self._agents) from None

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __iter__(self) -> Iterator[AgentSpec]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)

    @property
    def names(self) -> list[str]:
        return list(self._agents)

    @property
    def fallbacks(self) -> list[str]:
        """Agents named as another agent's fallback: they take over failed tasks only."""
        named = {spec.fallback for spec in self if spec.fallback is not None}
        return [name for name in self._agents if name in named]

    @property
    def workers(self) -> list[str]:
        """Agents the supervisor may give tasks to: every agent that is no fallback."""
        spare = set(self.fallbacks)
        return [name for name in self._agents if name not in spare]

    def describe(self) -> str:
        """One line per worker (fallback agents left out), for the supervisor's prompt."""
        lines = []
        workers = set(self.workers)
        for spec in self:
            if spec.name not in workers:
                continue
            extras = []
            if spec.capabilities:
                extras.append("capabilities: " + ", ".join(spec.capabilities))
            if spec.tools:
                extras.append("tools: " + ", ".join(spec.tool_names))
            tail = f" ({'; '.join(extras)})" if extras else ""
            lines.append(f"- {spec.name}: {spec.description or 'no description'}{tail}")
        return "\n".join(lines)


def is_factory(graph: Any) -> bool:
    """Whether `graph` is a worker factory `(tools, model) -> graph`, not a graph."""
    return callable(graph) and not hasattr(graph, "invoke") and not hasattr(graph, "compile")


def as_registry(agents: Iterable[AgentSpec] | AgentRegistry) -> AgentRegistry:
    return agents if isinstance(agents, AgentRegistry) else AgentRegistry(list(agents))
