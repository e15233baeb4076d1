"""Shaping one step: what `Agent(prepare_step=...)` is shown, and the overrides it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from .._usage import Usage

__all__ = ["PrepareStep", "StepContext", "StepOverrides"]


@dataclass(frozen=True, slots=True)
class StepContext:
    """What `prepare_step` sees before a step's request is sent."""

    run_id: str
    step: int
    """The number of the step about to be requested (1 for the first)."""
    messages: tuple[Mapping[str, Any], ...]
    """The conversation so far, read-only, as it will be sent."""
    usage: Usage
    """Usage of the run so far."""
    model: str
    """The agent's model."""
    tools: tuple[str, ...]
    """The names of the agent's tools offered now."""
    deps: Any = None
    """The run's `deps`, as the tools see them."""


@dataclass(frozen=True, slots=True)
class StepOverrides:
    """Changes to one step's request; a field left None keeps the agent's setting.

    `tools` names the tools offered in this step (a call to another one is refused as
    unknown); `tool_choice` is `"auto"`, `"none"`, `"required"` or the name of an
    offered tool, which the model must then call; `instructions` are added after the
    agent's instructions for this request only.
    """

    model: str | None = None
    tools: Sequence[str] | None = None
    tool_choice: str | None = None
    instructions: str | None = None

    def __post_init__(self) -> None:
        if self.tools is not None:
            if isinstance(self.tools, str):
                raise TypeError("StepOverrides.tools is a list of tool names, not one name")
            object.__setattr__(self, "tools", tuple(self.tools))


PrepareStep: TypeAlias = Callable[
    [StepContext], "StepOverrides | Awaitable[StepOverrides | None] | None"
]
"""Called before each step's request (sync or async); returns that step's overrides or None."""
