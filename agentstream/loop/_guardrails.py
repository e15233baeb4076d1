"""Guardrails: checks on a run's input, beside its first request, and on its final answer
(the checks and their verdicts here; `_guards` runs them in a run).

An input guardrail sees the conversation the run starts with; it runs while the first
request streams and its verdict is awaited before any call of that response is sorted
(and no call starts early meanwhile), so a tripped one stops the run before any tool
starts; the first response then stops streaming at once. An output guardrail sees the
final answer (the text, or the typed value) and can stop the run or have the model told
why and asked once more. A check that raises trips its guardrail: a guard that cannot
judge does not let the run through.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio

from ..state._guardrail import GuardrailStage, GuardrailTripped

__all__ = ["RETRY", "Guardrail", "InputGuardrail", "OutputGuardrail", "verdict"]

Verdict: TypeAlias = "GuardrailTripped | Awaitable[GuardrailTripped | None] | None"

RETRY = "Your answer was not accepted ({name}): {message}. Answer again."
"""What the model is told when an output guardrail asks for another answer."""


@dataclass(frozen=True, slots=True)
class InputGuardrail:
    """A check on a run's input: `check(messages)` (sync or async; a sync one runs in a
    worker thread) returns None to let the run go on or `GuardrailTripped` to stop it.

    `messages` is the conversation the run starts with, read-only.
    """

    name: str
    check: Callable[[tuple[Mapping[str, Any], ...]], Verdict]


@dataclass(frozen=True, slots=True)
class OutputGuardrail:
    """A check on a run's final answer: `check(output)` (sync or async; a sync one runs in
    a worker thread) returns None, `GuardrailTripped` to stop the run, or
    `GuardrailTripped(..., retry=True)` to ask the model once more.

    `output` is the answer's text, or the typed value for a run with an output type.
    """

    name: str
    check: Callable[[Any], Verdict]


Guardrail: TypeAlias = InputGuardrail | OutputGuardrail


async def verdict(guard: Guardrail, stage: GuardrailStage, value: Any) -> GuardrailTripped | None:
    """What `guard` says of `value`, with its name and stage filled in."""
    try:
        check: Callable[[Any], Any] = guard.check
        if inspect.iscoroutinefunction(check):
            answer = await check(value)
        else:
            answer = await anyio.to_thread.run_sync(check, value)
            if inspect.isawaitable(answer):
                answer = await answer
    except Exception as exc:  # fail closed, and nothing internal in the message
        answer = GuardrailTripped(f"the guardrail failed: {type(exc).__name__}")
    if answer is None:
        return None
    if not isinstance(answer, GuardrailTripped):
        answer = GuardrailTripped(f"the guardrail gave no verdict: {type(answer).__name__}")
    retry = answer.retry and stage == "output"
    return dataclasses.replace(answer, guardrail=guard.name, stage=stage, retry=retry)
