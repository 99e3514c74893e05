"""Policy schema: frozen pydantic models that people write in YAML.

A policy file has scope-keyed sections, general to specific:

    global -> tenants.<t> -> workflows.<w> -> agents.<a> -> tools.<tool>

plus `models.<model>` (per-model rate limits) and `prices.<model>` (USD per 1M input
and output tokens). Every setting is optional; None means "this scope says nothing",
so the next more general scope decides. Every model forbids unknown keys, and every
list is a tuple and every mapping read-only, so a loaded `PolicySet` cannot change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self, TypeVar

import re2
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    WrapSerializer,
    field_validator,
    model_validator,
)


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error reaches the policy's author in PolicyError
    return options


_RE2_OPTIONS = _re2_options()


@lru_cache(maxsize=512)
def compiled(pattern: str) -> Any:
    """`pattern` compiled by RE2, cached: policies reuse a few patterns on every call.

    Policy patterns are applied to text a model wrote (tool arguments, answers), so they
    run on RE2, whose time is linear in the text: no pattern can backtrack for minutes.
    The object has `re.Pattern`'s `fullmatch`, `search`, `sub` and `subn`.
    """
    return re2.compile(pattern, _RE2_OPTIONS)


def _regex(value: str) -> str:
    try:
        compiled(value)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"invalid regular expression {value!r}: {reason}. Policy patterns run on RE2 "
            "(linear time): backreferences (\\1) and lookaround ((?=...), (?!...), (?<=...)) "
            "are not available; rewrite the pattern without them"
        ) from None
    return value


# Upper bounds of numeric settings: far above any sane value, low enough that a typo
# (an extra zero or six) is an error at load time instead of a run that never ends.
MAX_ATTEMPTS = 20
MAX_DELAY = 3_600.0  # one retry delay, seconds
MAX_TIMEOUT = 86_400.0  # a day
MAX_PERIOD = 31 * 86_400.0  # rate limit refill, breaker window and cooldown
MAX_EXPIRY = 366 * 86_400.0  # approval validity
MAX_CALLS = 1_000_000
MAX_FAILURES = 10_000
MAX_TOKENS = 10**12
MAX_USD = 10**9
MAX_PRICE = 100_000.0
MAX_TEXT = 10_000_000


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"{value!r} is not a scalar; one_of takes strings, numbers or booleans")


Regex = Annotated[str, AfterValidator(_regex)]
Scalar = Annotated[Any, AfterValidator(_scalar)]
Names = tuple[str, ...]


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _as_dict(value: Mapping[str, Any], handler: Any) -> Any:
    return handler(dict(value))


#: Longest wait (seconds) a policy may allow a call to queue for a rate limit: one day.
MAX_RATE_WAIT = 86_400.0
#: Most runs in flight and queued a policy may allow one tenant.
MAX_RUNS = 100_000
#: Longest wait (seconds) a policy may allow an embedded run to wait for a slot: one hour.
MAX_RUN_WAIT = 3_600.0

V = TypeVar("V")
T = TypeVar("T")
#: A mapping validated from YAML, stored read-only, dumped back as a dict.
FrozenMap = Annotated[dict[str, V], AfterValidator(_frozen), WrapSerializer(_as_dict)]


def _bool_to_approval(value: Any) -> Any:
    return {"required": value} if isinstance(value, bool) else value


class Model(BaseModel):
    """Base of every policy model: frozen, unknown keys are errors."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, validate_default=True
    )


class ArgConstraint(Model):
    """Constraints on one tool argument; all that are set must hold."""

    required: bool = False
    under: str | None = Field(default=None, min_length=1)
    min: float | None = None
    max: float | None = None
    hosts: Names | None = None
    pattern: Regex | None = None
    one_of: tuple[Scalar, ...] | None = None
    max_length: NonNegativeInt | None = Field(default=None, le=MAX_TEXT)

    @model_validator(mode="after")
    def _bounds(self) -> ArgConstraint:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min!r} is larger than max {self.max!r}")
        return self


class ToolAccess(Model):
    """Tool names this scope allows or denies; "*" means every tool."""

    allow: Names = ()
    deny: Names = ()


class Redaction(Model):
    """Replace every full match of `pattern` (a regex) by the literal `replacement`."""

    pattern: Regex
    replacement: str = "[REDACTED]"


class PiiFilter(Model):
    """Which kinds of personal data to redact; None leaves the question to a wider scope."""

    email: bool | None = None
    phone: bool | None = None
    card: bool | None = None


class OutputPolicy(Model):
    """Filters on tool results and final answers."""

    redact: tuple[Redaction, ...] = ()
    pii: PiiFilter = PiiFilter()
    max_length: PositiveInt | None = Field(default=None, le=MAX_TEXT)
    marker: str | None = None


class Amounts(Model):
    """A budget in tokens and/or US dollars."""

    tokens: NonNegativeInt | None = Field(default=None, le=MAX_TOKENS)
    usd: NonNegativeFloat | None = Field(default=None, le=MAX_USD)


class AgentBudgets(Model):
    """Budgets of one agent: `per_run` is per agent per run."""

    per_run: Amounts | None = None


class WorkflowBudgets(AgentBudgets):
    """`per_run` caps one run of the workflow; `per_agent` is each agent's default per run."""

    per_agent: Amounts | None = None


class Budgets(WorkflowBudgets):
    """Global or tenant budgets; `per_day` is per tenant per (UTC) day."""

    per_day: Amounts | None = None


class RateLimitSpec(Model):
    """A token bucket: at most `calls` calls, refilled over `per` seconds.

    A call that finds the bucket empty waits for its turn, at most `max_wait` seconds
    (default: `per`, the time the bucket takes to refill); past that it is refused.
    """

    calls: PositiveInt = Field(le=MAX_CALLS)
    per: PositiveFloat = Field(le=MAX_PERIOD)
    max_wait: float | None = Field(default=None, ge=0, le=MAX_RATE_WAIT)


class ScopeRateLimit(RateLimitSpec):
    """A scope's rate limit; `kind` says which calls it counts (model, tool or any)."""

    kind: Literal["any", "model", "tool"] = "any"


class Downgrade(Model):
    """Switch to model `to` when the remaining budget fraction falls below `below_fraction`."""

    below_fraction: float = Field(gt=0, le=1)
    to: str = Field(min_length=1)


class Route(Model):
    """Models per task class, e.g. `{summarise: "openai:gpt-4o-mini"}`."""

    task_class: FrozenMap[str] = {}


def _model_list(value: Any) -> Any:
    """`model: <name>` is `{use: <name>}`; `model: [a, b, ...]` is `{use: a, fallbacks: [b,
    ...]}`: the models in order, each taking over when the one before it is down."""
    if isinstance(value, str):
        return {"use": value}
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("a model list needs at least one model")
        return {"use": value[0], "fallbacks": list(value[1:])}
    return value


class ModelChoice(Model):
    """Which model a scope uses (`use`), the models that take over when it is down
    (`fallbacks`, in order), per task class (`route`) and when money is short."""

    use: str | None = Field(default=None, min_length=1)
    fallbacks: tuple[Annotated[str, Field(min_length=1)], ...] | None = None
    route: Route | None = None
    downgrade: Downgrade | None = None


ModelSetting = Annotated[ModelChoice, BeforeValidator(_model_list)]


class RetrySettings(Model):
    """Retries with exponential backoff: delay = min(initial_delay * backoff**n, max_delay)."""

    attempts: PositiveInt = Field(default=3, le=MAX_ATTEMPTS)
    initial_delay: NonNegativeFloat = Field(default=0.5, le=MAX_DELAY)
    backoff: float = Field(default=2.0, ge=1, le=10)
    max_delay: NonNegativeFloat = Field(default=30.0, le=MAX_DELAY)
    jitter: bool = True


class Approval(Model):
    """A human approval: who may give it (any role when empty) and how long it stays valid."""

    required: bool = True
    roles: Names = ()
    expires_in: PositiveFloat | None = Field(default=None, le=MAX_EXPIRY)


ApprovalSetting = Annotated[Approval, BeforeValidator(_bool_to_approval)]


class ToolApproval(Approval):
    """Approval of a tool call; only when the arguments match `when`, unless the caller has
    one of `unless_roles`."""

    when: FrozenMap[ArgConstraint] = {}
    unless_roles: Names = ()


class Block(Model):
    """What any scope (global, tenant, workflow, agent) can say."""

    tools: ToolAccess | None = None
    output: OutputPolicy | None = None
    rate_limits: tuple[ScopeRateLimit, ...] | None = None
    model: ModelSetting | None = None
    data_scopes: Names | None = None
    timeout: PositiveFloat | None = Field(default=None, le=MAX_TIMEOUT)
    retry: RetrySettings | None = None


class AgentBlock(Block):
    """Settings of one agent (in every workflow it appears in)."""

    budgets: AgentBudgets | None = None


class WorkflowBlock(Block):
    """Settings of one workflow, including its plan and answer gates and its input limits
    (`max_goal_chars`, `max_tasks`: read when the workflow is built)."""

    budgets: WorkflowBudgets | None = None
    approve_plan: ApprovalSetting | None = None
    approve_answer: ApprovalSetting | None = None
    max_goal_chars: PositiveInt | None = Field(default=None, le=10_000_000)
    max_tasks: PositiveInt | None = Field(default=None, le=10_000)


class ScopeBlock(WorkflowBlock):
    """The global block and each tenant's block.

    `max_runs` caps a tenant's runs in flight and queued (a LangGraph server answers 429
    past it; the embedded runtime waits up to `run_wait` seconds for a slot, then refuses).
    """

    budgets: Budgets | None = None
    max_runs: int | None = Field(default=None, ge=1, le=MAX_RUNS)
    run_wait: float | None = Field(default=None, ge=0, le=MAX_RUN_WAIT)


class BreakerPolicy(Model):
    """Circuit breaker of a tool or model: opens after `failures` transient failures within
    `window` seconds, lets one probe through after `cooldown`; `per_tenant` gives every
    tenant its own breaker instead of one shared by all."""

    failures: PositiveInt = Field(default=5, le=MAX_FAILURES)
    window: PositiveFloat = Field(default=60.0, le=MAX_PERIOD)
    cooldown: PositiveFloat = Field(default=30.0, le=MAX_PERIOD)
    per_tenant: bool = False


class ToolPolicy(Model):
    """Everything about one tool: access switch, arguments, approval and runtime metadata."""

    enabled: bool = True
    breaker: BreakerPolicy | None = None
    args: FrozenMap[ArgConstraint] = {}
    requires_approval: ToolApproval | None = None
    side_effects: bool = False
    idempotent: bool | None = None
    timeout: PositiveFloat | None = Field(default=None, le=MAX_TIMEOUT)
    retry: RetrySettings | None = None
    rate_limit: RateLimitSpec | None = None
    output: OutputPolicy | None = None


class ModelPolicy(Model):
    """Per-model settings (keyed by the model string, e.g. "openai:gpt-4o")."""

    rate_limit: RateLimitSpec | None = None
    breaker: BreakerPolicy | None = None
    timeout: PositiveFloat | None = Field(default=None, le=MAX_TIMEOUT)


#: USD per 1M tokens of one kind (bounded, so a typo cannot make a call cost millions).
PricePerMillion = Annotated[NonNegativeFloat, Field(le=MAX_PRICE)]


class PriceSpec(Model):
    """USD per 1M tokens per token kind; unset cache kinds cost as input, reasoning as
    output."""

    input: PricePerMillion
    output: PricePerMillion
    cached_input: PricePerMillion | None = None
    cache_write: PricePerMillion | None = None
    reasoning: PricePerMillion | None = None


#: `[input, output]`, optionally with cached input, cache write and reasoning after them,
#: or a mapping with those names.
Price = (
    tuple[PricePerMillion, PricePerMillion]
    | tuple[PricePerMillion, PricePerMillion, PricePerMillion]
    | tuple[PricePerMillion, PricePerMillion, PricePerMillion, PricePerMillion]
    | PriceSpec
)


class PolicySet(Model):
    """A whole policy: every section merged from one file or a directory of files."""

    global_: ScopeBlock = Field(default_factory=ScopeBlock, alias="global")
    tenants: FrozenMap[ScopeBlock] = {}
    workflows: FrozenMap[WorkflowBlock] = {}
    agents: FrozenMap[AgentBlock] = {}
    tools: FrozenMap[ToolPolicy] = {}
    models: FrozenMap[ModelPolicy] = {}
    prices: FrozenMap[Price] = {}

    # Where each key came from, (file, line) by key path; filled by the loader so that
    # `validate_names` can point at the line even when called long after loading.
    _origins: Mapping[tuple[Any, ...], tuple[str, int]] = PrivateAttr(default_factory=dict)
    _sources: tuple[str, ...] = PrivateAttr(default=())
    _baseline: bool = PrivateAttr(default=False)
    # What pure decisions derived from this (frozen) policy, by key: they run on every
    # model call with the same few arguments (`memo`).
    _memo: dict[Any, Any] = PrivateAttr(default_factory=dict)

    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """`build()`, computed once per policy and `key` (a hashable of its arguments).
        The value must not be changed by its callers."""
        try:
            value: T = self._memo[key]
        except KeyError:
            value = self._memo[key] = build()
        return value

    def __copy__(self) -> Self:
        # `model_copy(update=...)` copies, then sets other fields: the copy's answers are
        # its own, not the ones remembered for this policy.
        copied = super().__copy__()
        copied._memo = {}
        return copied

    @classmethod
    def baseline(cls) -> PolicySet:
        """The policy of a workflow built without one: it says nothing, so every tool and
        data namespace is refused (default deny) and nothing else is limited."""
        policy = cls()
        policy._baseline = True
        return policy

    @property
    def routes_on_budget(self) -> bool:
        """Whether a scope downgrades its model when budget runs low: only then does
        routing a model call read what was spent."""

        def any_downgrade() -> bool:
            blocks: list[Block] = [self.global_, *self.tenants.values()]
            blocks += [*self.workflows.values(), *self.agents.values()]
            return any(b.model is not None and b.model.downgrade is not None for b in blocks)

        return self.memo("routes_on_budget", any_downgrade)

    @property
    def is_baseline(self) -> bool:
        """True for `PolicySet.baseline()`, the stand-in for "no policy was given"."""
        return self._baseline

    @field_validator("tenants", "workflows", "agents", "tools", "models", "prices", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        # `agents:` with nothing under it is YAML null; read it as an empty section.
        return {} if value is None else value

    @property
    def sources(self) -> tuple[str, ...]:
        """The files this policy was loaded from (empty when built in code)."""
        return self._sources

    def origin(self, path: tuple[Any, ...]) -> tuple[str | None, int | None]:
        """File and line of the key at `path` (or of its nearest enclosing key)."""
        for end in range(len(path), -1, -1):
            found = self._origins.get(tuple(path[:end]))
            if found is not None:
                return found
        return (self._sources[0] if self._sources else None), None

    def validate_names(
        self,
        *,
        agents: Iterable[str] | None = None,
        tools: Iterable[str] | None = None,
        workflows: Iterable[str] | None = None,
    ) -> None:
        """Check that every agent, tool and workflow the policy names exists.

        A kind left as None is not checked. Called by the loader and again by the
        workflow builder, which knows the registered names.

        Raises:
            PolicyError: naming the file, line and key path of the first unknown name
                (the others follow in the message).
        """
        from podium.policies._names import check_names

        check_names(self, agents=agents, tools=tools, workflows=workflows)
