"""Steering a durable run from any process: messages, cancelled tool calls, a stop.

- **Messages** (`DurableAgent.steer`) are DBOS messages on `STEER_TOPIC`. The workflow
  takes them when a step has finished (`RunControl.take_messages`, after `StepFinished`,
  before the next request is made) and hands each to `AgentRun.send`. DBOS consumes a
  message and records it as the workflow's output at that point in one transaction, so
  a replay after a crash gets the same messages at the same step, and a message is
  delivered exactly once. The events carry the id the sender was given.
- **Cancelling a call** (`DurableAgent.cancel_call`) is a row of `ControlTable`. The
  process running the workflow polls its rows (`RunControl.watch`); the tool step of that
  call, running or about to start, then returns `CancelledCall` instead of the tool's
  result. DBOS records that, so a replay never runs the tool again; the workflow turns
  it into `AgentRun.cancel_call`, and the model is told as in a live run.
- **Stopping** (`DurableAgent.cancel`): DBOS cancels the workflow (for good, whichever
  process it was on) and a row asks the process running it to leave the run at once:
  the model stream is closed and the running tool cancelled, as a live run stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from dbos import DBOS

from agentstream import AgentRun, Event, MessageDelivered, MessageQueued, ToolContext

from ._control import ControlTable

__all__ = ["STEER_TOPIC", "CancelledCall", "RunControl"]

STEER_TOPIC = "agentstream.steer"
"""The DBOS topic of the messages sent to a durable run (`{"id": ..., "text": ...}`)."""

_POLL = 0.5  # seconds between looks at a running workflow's control rows (one query)


@dataclass(frozen=True, slots=True)
class CancelledCall:
    """What a tool step returns (and DBOS records) for a call cancelled from outside."""

    reason: str | None


class RunControl:
    """One workflow's side of steering, in the process that runs it."""

    def __init__(self, control: ControlTable, workflow_id: str) -> None:
        self._control = control
        self.workflow_id = workflow_id
        self.run: AgentRun[Any] | None = None
        """The run being driven (set once it is made)."""
        self.stopped = False
        self._cancels: dict[str, str | None] = {}  # call id -> reason, as asked
        self._asked = anyio.Event()  # set (and replaced) when a cancel arrives
        self._ids: dict[str, str] = {}  # the run's message id -> the one the sender got

    async def watch(self, stop: Callable[[], None]) -> None:
        """Poll the run's control rows until cancelled; call `stop` if it is stopped."""
        while True:
            asked_stop, cancels = await anyio.to_thread.run_sync(
                self._control.requests, self.workflow_id
            )
            if any(call not in self._cancels for call in cancels):
                self._cancels.update(cancels)
                self._asked.set()
                self._asked = anyio.Event()
            if asked_stop:
                self.stopped = True
                stop()
                return
            await anyio.sleep(_POLL)

    async def guard(self, call_id: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """Inside a tool step: `work()`'s result, or `CancelledCall` if it is cancelled."""
        if call_id in self._cancels:
            return CancelledCall(self._cancels[call_id])  # it never starts
        outcome: list[Any] = []
        async with anyio.create_task_group() as group:

            async def run() -> None:
                outcome.append(await work())
                group.cancel_scope.cancel()

            async def watch() -> None:
                while call_id not in self._cancels:
                    await self._asked.wait()
                outcome.append(CancelledCall(self._cancels[call_id]))
                group.cancel_scope.cancel()

            group.start_soon(run)
            group.start_soon(watch)
        return outcome[0]

    def checked(
        self, call_id: str, function: Callable[[dict[str, Any], ToolContext], Any]
    ) -> Callable[[dict[str, Any], ToolContext], Any]:
        """A sync tool's step function (run in its thread): `CancelledCall` instead of the
        result when the call was cancelled before it started or told to stop while it ran,
        so what DBOS records is final either way."""

        def call(arguments: dict[str, Any], context: ToolContext) -> Any:
            if call_id in self._cancels:
                return CancelledCall(self._cancels[call_id])  # it never starts
            result = function(arguments, context)
            return CancelledCall(self._cancels.get(call_id)) if context.cancelled else result

        return call

    async def flag(self, context: ToolContext) -> None:
        """Beside a sync tool's step: set its `ctx.cancelled` once a cancel arrives."""
        while context.tool_call_id not in self._cancels:
            await self._asked.wait()
        context._mark_cancelled()  # the flag a live run's cancel_call sets

    async def answered(self, result: Any, context: ToolContext) -> Any:
        """In the workflow: a recorded `CancelledCall` becomes the run's `cancel_call`."""
        if not isinstance(result, CancelledCall) or self.run is None:
            return result
        self.run.cancel_call(context.tool_call_id, result.reason)
        await anyio.lowlevel.checkpoint()  # the cancel takes this call's task here
        return result.reason  # (not reached: the run answers the call as cancelled)

    async def take_messages(self) -> None:
        """At a step boundary, in the workflow: the messages sent meanwhile, to the run."""
        assert self.run is not None
        while True:
            message = await DBOS.recv_async(STEER_TOPIC, timeout_seconds=0)
            if not isinstance(message, dict):
                return
            text = message.get("text")
            if isinstance(text, str) and text.strip():
                sent = self.run.send(text)
                self._ids[sent] = str(message.get("id") or sent)

    def relabel(self, event: Event) -> Event:
        """A steering event with the id its sender was given."""
        if isinstance(event, (MessageQueued, MessageDelivered)) and event.id in self._ids:
            return dataclasses.replace(event, id=self._ids[event.id])
        return event
