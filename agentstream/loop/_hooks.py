"""What steering, `prepare_step` and guardrails add to a run, kept apart from its loop.

The loop calls in at four points: before a step's request (`before_step`: report the
messages sent meanwhile, deliver the queue, shape the step, start the input
guardrails), before the first response's calls are sorted (`input_verdict`), when the
model has answered (`answered`: one more step for a queued message, or the output
guardrails), and as the result is made (`output`). A run that uses none of them pays a
few checks per step (about a microsecond, measured) and nothing per chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskGroup

from .._events import Event, MessageQueued
from ..state._guardrail import GuardrailTripped
from ..state._state import RunState, StopReason
from ._guards import Guards
from ._prepare import prepare
from ._send import Attempt
from ._steer import announce, deliver
from ._step_state import StepState

if TYPE_CHECKING:
    from ._config import RunConfig
    from ._typed import TypedRun

__all__ = ["RunHooks"]

_ANSWERED: frozenset[StopReason | None] = frozenset({"answer", "refusal"})
"""The ends of a run that a queued message turns into one more step."""


class RunHooks:
    """One run's steering queue reports, step overrides and guardrails."""

    __slots__ = ("base", "config", "guards", "news")

    def __init__(self, config: RunConfig) -> None:
        self.base = self.config = config
        """The run's config, and the one of the step under way (`prepare_step`'s copy)."""
        self.news: list[MessageQueued] = []
        """Messages sent (`AgentRun.send`) and not reported yet."""
        self.guards = Guards(config.guardrails) if config.guardrails else None

    @property
    def guarding(self) -> bool:
        """Whether the input guardrails' verdicts are still awaited (no tool may start)."""
        return self.guards is not None and not self.guards.checked

    @property
    def tripped(self) -> GuardrailTripped | None:
        """The verdict that stopped the run, if a guardrail did."""
        return None if self.guards is None else self.guards.tripped

    def idle(self, state: RunState) -> bool:
        """Whether `before_step` has nothing to do (then it is not called: a generator
        made and ended for nothing costs a dozen calls a step)."""
        return (
            not self.news
            and not state.queued
            and self.base.prepare_step is None
            and (self.guards is None or self.guards.checked)
        )

    async def before_step(
        self, step: StepState, state: RunState, task_group: TaskGroup | None, deps: Any
    ) -> AsyncGenerator[Event, None]:
        """Before a new step's request: the messages sent meanwhile, then delivered; the
        step's overrides; the input guardrails, started beside the first request."""
        for event in announce(self.news):
            yield event
        if step.resumed is not None:  # its calls go on: no request, no delivery yet
            self.config = self.base
            return
        if state.queued:
            for delivered in deliver(state, step.number):
                yield delivered
        if self.base.prepare_step is not None:
            self.config, step.overrides, prepared = await prepare(
                self.base, state, step.number, state.run_id, deps
            )
            if prepared is not None:
                yield prepared
        if self.guarding:
            assert self.guards is not None
            assert task_group is not None
            self.guards.start(task_group, state)

    @property
    def cut(self) -> bool:
        """Whether the first response was cut short by a tripped input guardrail."""
        return self.guards is not None and self.guards.cut

    def watch(self, attempt: Attempt) -> Attempt:
        """The first request's attempt, whose stream stops if an input guardrail trips."""
        assert self.guards is not None
        assembler, stream, chunks = attempt
        return assembler, stream, self.guards.until_tripped(chunks)

    async def input_verdict(self, step: StepState) -> AsyncGenerator[Event, None]:
        """The input guardrails' verdicts, awaited; a tripped one sets `step.stop`."""
        assert self.guards is not None
        async with aclosing(self.guards.input_verdict(step)) as events:
            async for event in events:
                yield event

    def announce(self) -> list[MessageQueued]:
        """The messages sent while tools run, to report now."""
        return announce(self.news)

    async def answered(
        self, state: RunState, step: StepState, typed: TypedRun | None
    ) -> AsyncGenerator[Event, None]:
        """The run would end on the model's answer: one more step for a queued message
        (within the step limit), else the output guardrails' verdict on the answer."""
        if step.stop not in _ANSWERED:
            return
        if state.queued and step.number < self.config.max_steps:
            step.stop = None
        elif step.stop == "answer" and self.guards is not None and self.guards.outputs:
            output = typed.value if typed is not None else step.assistant.get("content") or ""
            checking = self.guards.output_verdict(state, step, output, self.config.max_steps)
            async with aclosing(checking) as events:
                async for event in events:
                    yield event

    def output(self, output: Any, stop: StopReason, typed: bool) -> Any:
        """The result's output: none when a guardrail stopped the run."""
        if stop != "guardrail":
            return output
        return None if typed else ""
