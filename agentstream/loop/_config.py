"""What a run is given: `RunConfig`, made by `Agent` as a run starts, and `RunStart`.

The loop reads its settings here and never the `Agent`, so the engine's rooms do not
know the class that assembles them (and an agent changed mid-run does not change a
run under way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import openai

from ..context._policy import ContextPolicy
from ..state._approvals import Approval, Approver
from ..state._state import RunState
from ..state._store import Session
from ..tools._tool import Tool
from ..tools._toolset import ToolCatalog
from ._fallback import CircuitBreaker, Fallback
from ._guardrails import Guardrail
from ._limits import UsageLimits
from ._observe import Observer
from ._prices import PriceTable
from ._retries import Retries
from ._step_shape import PrepareStep
from ._timeouts import Timeouts

__all__ = ["Api", "ClientLike", "OutputMemory", "RunConfig", "RunStart"]

Api = Literal["chat", "responses"]
"""The wire an agent speaks: Chat Completions or the Responses API."""

ClientLike = openai.AsyncOpenAI | Callable[[], openai.AsyncOpenAI]


class OutputMemory:
    """What an agent learns about its server across runs: whether it refused
    `response_format`, so later runs ask for typed output by the final tool at once."""

    __slots__ = ("by_tool",)

    def __init__(self) -> None:
        self.by_tool = False


@dataclass(frozen=True, slots=True)
class RunConfig:
    """An agent's settings as one run sees them (see `Agent` for each one's meaning)."""

    client: ClientLike
    model: str
    api: Api
    request: Mapping[str, Any]
    catalog: ToolCatalog
    max_steps: int
    final_answer: bool
    max_invalid_calls: int
    max_tool_calls: int | None
    max_tool_calls_per_step: int | None
    max_argument_size: int | None
    max_result_size: int | None
    partial_arguments: bool
    early_tools: bool
    timeouts: Timeouts
    retries: Retries
    approver: Approver | None
    observers: tuple[Observer, ...]
    chain_responses: bool
    background: bool
    output_memory: OutputMemory
    max_concurrent_tools: int | None = None
    context: ContextPolicy | None = None
    max_media_size: int | None = 5_000_000
    prepare_step: PrepareStep | None = None
    guardrails: tuple[Guardrail, ...] = ()
    limits: UsageLimits | None = None
    prices: PriceTable | None = None
    fallback: tuple[Fallback, ...] = ()
    breaker: CircuitBreaker | None = None

    @property
    def tools(self) -> dict[str, Tool]:
        """The tools offered now, by name (a toolset's may change between steps)."""
        return self.catalog.tools


@dataclass(frozen=True, slots=True)
class RunStart:
    """How a run begins: a new conversation, a saved state, or a session."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    """The conversation of a new run (with the agent's instructions)."""
    added: list[dict[str, Any]] = field(default_factory=list)
    """The prompt's messages alone, to append to a session's conversation."""
    state: RunState | None = None
    session: Session | None = None
    resume: bool = False
    approvals: dict[str, Approval] = field(default_factory=dict)
    approver: Approver | None = None
    deps: Any = None
    """What the tools read as `ctx.deps` (never saved with the state)."""
    limits: UsageLimits | None = None
    """This run's usage limits, in place of the agent's."""
    max_concurrent_tools: int | None = None
    """This run's cap on tool calls at once, in place of the agent's."""
