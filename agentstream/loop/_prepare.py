"""Applying `prepare_step`: one step's model, tools, `tool_choice` and instructions.

The overrides hold for one request only: the step runs with a copy of the run's
`RunConfig` whose model and tool catalog are the step's (so a call to a tool not offered
is refused as unknown, and no hidden tool starts early), and the request builders of
both wires add the forced `tool_choice` and the extra instructions.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any

from .._events import StepPrepared
from .._exceptions import RunError, SetupError
from ..state._state import RunState
from ..tools._toolset import ToolCatalog
from ._config import RunConfig
from ._step_shape import StepContext, StepOverrides

__all__ = ["chat_overrides", "prepare", "responses_overrides"]

_CHOICES = frozenset({"auto", "none", "required"})


async def prepare(
    config: RunConfig, state: RunState, step: int, run_id: str, deps: Any
) -> tuple[RunConfig, StepOverrides | None, StepPrepared | None]:
    """The config of `step`, its overrides and the event that records them (or `config`,
    None, None when `prepare_step` changes nothing)."""
    assert config.prepare_step is not None
    tools = config.tools
    context = StepContext(
        run_id, step, tuple(types.MappingProxyType(message) for message in state.messages),
        state.usage, config.model, tuple(tools), deps,
    )  # fmt: skip
    try:
        answer = config.prepare_step(context)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:
        raise RunError(f"prepare_step failed at step {step}: {type(exc).__name__}: {exc}") from exc
    if answer is None or answer == StepOverrides():
        return config, None, None
    if not isinstance(answer, StepOverrides):
        raise SetupError(f"prepare_step must return StepOverrides or None, not {answer!r:.80}")
    return _step_config(config, answer), answer, StepPrepared(
        step, answer.model, None if answer.tools is None else tuple(answer.tools),
        answer.tool_choice, answer.instructions,
    )  # fmt: skip


def _step_config(config: RunConfig, overrides: StepOverrides) -> RunConfig:
    """`config` with the step's model and tools; raises `SetupError` on a name it lacks."""
    tools = config.tools
    offered = tuple(tools) if overrides.tools is None else tuple(overrides.tools)
    unknown = [name for name in offered if name not in tools]
    if unknown:
        raise SetupError(
            f"prepare_step offered tools the agent does not have: {', '.join(unknown)}"
            f" (it has: {', '.join(tools) or 'none'})"
        )
    choice = overrides.tool_choice
    if choice is not None and choice not in _CHOICES and choice not in offered:
        raise SetupError(
            f"prepare_step's tool_choice must be auto, none, required or an offered tool, "
            f"not {choice!r:.80}"
        )
    changes: dict[str, Any] = {}
    if overrides.model is not None:
        changes["model"] = overrides.model
    if overrides.tools is not None:
        changes["catalog"] = ToolCatalog([tools[name] for name in offered])
    return dataclasses.replace(config, **changes) if changes else config


def chat_overrides(params: dict[str, Any], overrides: StepOverrides, extra_step: bool) -> None:
    """Add the step's instructions and forced `tool_choice` to a Chat Completions body.

    The step after a limit, which may only answer, keeps its `tool_choice: none`.
    """
    if overrides.instructions:
        params["messages"] = with_instructions(params["messages"], overrides.instructions)
    choice = overrides.tool_choice
    if choice is not None and "tools" in params and not extra_step:
        params["tool_choice"] = (
            choice if choice in _CHOICES else {"type": "function", "function": {"name": choice}}
        )


def responses_overrides(overrides: StepOverrides | None) -> dict[str, Any]:
    """The step's `tool_choice` and extra instructions, as `responses_params` takes them."""
    if overrides is None:
        return {}
    choice: Any = overrides.tool_choice
    if choice is not None and choice not in _CHOICES:
        choice = {"type": "function", "name": choice}
    return {"tool_choice": choice, "more_instructions": overrides.instructions}


def with_instructions(messages: list[dict[str, Any]], extra: str) -> list[dict[str, Any]]:
    """`messages` with `extra` after the system message's text (or as the system message)."""
    first = messages[0] if messages else {}
    if first.get("role") == "system" and isinstance(first.get("content"), str):
        return [{**first, "content": f"{first['content']}\n\n{extra}"}, *messages[1:]]
    return [{"role": "system", "content": extra}, *messages]
