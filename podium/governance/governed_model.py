"""The governed model: the chat model podium hands to a custom worker, bound to one task.

A worker factory (`AgentSpec(graph=lambda tools, model: ...)`) receives this model. It
is a LangChain chat model whose every call goes through `Governor.call_model` (routing,
budget holds, rate limits, breakers, retries, usage and audit, recorded replies), with
the task's scope and the runtime's binding carried by the object itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from podium.governance.marks import GOVERNED_MODEL_TYPE, GOVERNED_REPLY


class GovernedChatModel(BaseChatModel):
    """A chat model whose calls are governed podium model calls of one task.

    Attributes:
        inner: The agent's model.
        agent: The agent's name.
        scope: The task's scope; binding: the runtime's binding.
        tools: The tools bound with `bind_tools` (the agent's own tools, not their
            governed copies, so their schemas bind once per model).
    """

    inner: Any
    agent: str
    scope: Any
    binding: Any
    tools: list[Any] = []

    @property
    def _llm_type(self) -> str:
        return GOVERNED_MODEL_TYPE

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> GovernedChatModel:
        """This model with `tools` bound (the governor binds them to the chosen model)."""
        from podium.governance.governed_tool import GovernedTool

        inner = [t.inner if isinstance(t, GovernedTool) else t for t in tools]
        return self.model_copy(update={"tools": inner})

    def _config(self) -> dict[str, Any]:
        from podium.governance.binding import scoped_configurable

        # No callbacks for the inner call: this model's own run is the one traced (with
        # the reply's usage), so a trace shows one generation per call, not two.
        return {
            "callbacks": [],
            "configurable": scoped_configurable(self.binding, self.scope),
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.binding.governor.call_model(
            self.inner,
            messages,
            agent=self.agent,
            task_id=self.scope.task_id,
            config=self._config(),
            scope=self.scope,
            tools=self.tools,
        )
        return _result(reply)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = await self.binding.governor.acall_model(
            self.inner,
            messages,
            agent=self.agent,
            task_id=self.scope.task_id,
            config=self._config(),
            scope=self.scope,
            tools=self.tools,
        )
        return _result(reply)


def _result(reply: Any) -> ChatResult:
    # The marker tells the callback guard the reply was accounted by the governor.
    return ChatResult(
        generations=[ChatGeneration(message=reply)], llm_output={GOVERNED_REPLY: True}
    )
