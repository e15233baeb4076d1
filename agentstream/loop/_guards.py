"""Running a run's guardrails: the input checks beside the first request, the output
checks on the final answer, and the verdict that stopped the run (see `_guardrails`)."""

from __future__ import annotations

import types
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._events import GuardrailChecked
from ..state._guardrail import GuardrailTripped
from ..state._state import RunState
from ._guardrails import RETRY, Guardrail, InputGuardrail, OutputGuardrail, verdict
from ._step_state import StepState

__all__ = ["Guards"]


class Guards:
    """The guardrails of one run: the input checks under way, the verdict that stopped it."""

    __slots__ = (
        "_done", "_reading", "_verdicts", "checked", "cut", "inputs", "outputs", "retried",
        "tripped",
    )  # fmt: skip

    def __init__(self, guardrails: Sequence[Guardrail]) -> None:
        self.inputs = tuple(g for g in guardrails if isinstance(g, InputGuardrail))
        self.outputs = tuple(g for g in guardrails if isinstance(g, OutputGuardrail))
        self.checked = not self.inputs
        """Whether the input verdicts are in (calls may start, early ones too)."""
        self.retried = False
        self.tripped: GuardrailTripped | None = None
        self._done: anyio.Event | None = None
        self._verdicts: list[GuardrailTripped | None] = []
        self._reading: anyio.CancelScope | None = (
            None  # the wait for the first response's next chunk
        )
        self.cut = False
        """Whether the first response was cut short because an input guardrail tripped."""

    def start(self, task_group: TaskGroup, state: RunState) -> None:
        """Start the input checks beside the first request (once a run).

        A resumed run whose state has a step (finished, or waiting with its calls) passed
        them already; one saved before its first step was judged checks them again.
        """
        if self.checked or self._done is not None:
            return
        if state.steps or state.pending is not None:
            self.checked = True
            return
        messages = state.messages
        self._done = anyio.Event()
        task_group.start_soon(
            self._check_inputs, tuple(types.MappingProxyType(message) for message in messages)
        )

    async def _check_inputs(self, messages: tuple[Mapping[str, Any], ...]) -> None:
        assert self._done is not None
        verdicts: list[GuardrailTripped | None] = [None] * len(self.inputs)

        async def one(position: int) -> None:
            verdicts[position] = await verdict(self.inputs[position], "input", messages)

        async with anyio.create_task_group() as group:
            for position in range(len(self.inputs)):
                group.start_soon(one, position)
        self._verdicts = verdicts
        self._done.set()
        if any(verdicts) and self._reading is not None:
            self._reading.cancel()  # no need to read the rest of the first response

    async def until_tripped(
        self, chunks: AsyncGenerator[dict[str, Any], None]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The first response's chunks, until an input guardrail trips (then `cut`).

        The cancel scope covers only the wait for the next chunk, never a `yield`.
        """
        async with aclosing(chunks):
            while not self._tripped_now():
                with anyio.CancelScope() as scope:
                    self._reading = scope
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        self._reading = None
                if scope.cancelled_caught or self._tripped_now():
                    break
                yield chunk
            self.cut = True

    def _tripped_now(self) -> bool:
        return self._done is not None and self._done.is_set() and any(self._verdicts)

    async def input_verdict(self, step: StepState) -> AsyncGenerator[GuardrailChecked, None]:
        """Wait for the input verdicts; the first that tripped stops the run here."""
        if self.checked or self._done is None:
            return
        await self._done.wait()
        self.checked = True
        for guard, tripped in zip(self.inputs, self._verdicts, strict=True):
            yield GuardrailChecked(step.number, "input", guard.name, tripped)
        self.tripped = next((tripped for tripped in self._verdicts if tripped), None)
        if self.tripped is not None:
            step.stop = "guardrail"

    async def output_verdict(
        self, state: RunState, step: StepState, output: Any, max_steps: int
    ) -> AsyncGenerator[GuardrailChecked, None]:
        """Check the final answer, in order until one trips: stop, or one more step."""
        for guard in self.outputs:
            tripped = await verdict(guard, "output", output)
            yield GuardrailChecked(step.number, "output", guard.name, tripped)
            if tripped is None:
                continue
            if tripped.retry and not self.retried and step.number < max_steps:
                self.retried = True
                told = RETRY.format(name=tripped.guardrail, message=tripped.message)
                state.messages.append({"role": "user", "content": told})
                step.stop = None
            else:
                self.tripped, step.stop = tripped, "guardrail"
            return
