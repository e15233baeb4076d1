"""Steering a run's tool calls from outside: cancelling one call, capping how many run.

`CallControl` is made once per run. It knows which step's runner holds each call that
can still be cancelled (`AgentRun.cancel_call` goes through it), and, with
`max_concurrent_tools`, holds the run's `Slots`: one queue for every call of the run,
early starts included, so calls wait in the order they were started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import anyio

from .._events import MessageQueued
from .._exceptions import CallNotRunning, SetupError

if TYPE_CHECKING:
    from ..state._approvals import Approver
    from ._config import RunConfig, RunStart

__all__ = ["CallControl", "Cancellable", "Slots", "cancelled_output"]


class Cancellable(Protocol):
    """What holds a call that may be cancelled (a step's `ToolRunner`)."""

    def cancel(self, call_id: str, reason: str | None) -> None: ...

    def nudge(self, news: list[MessageQueued]) -> None: ...


def cancelled_output(reason: str | None) -> str:
    """What the model is told in place of the result of a call cancelled by the user."""
    text = "Cancelled by the user before the tool finished; there is no result."
    return f"{text} Reason: {reason}" if reason else text


def not_running(call_id: str, why: str) -> CallNotRunning:
    return CallNotRunning(f"cannot cancel the tool call {call_id!r:.80}: {why}")


class Slots:
    """At most `capacity` calls hold a slot at once; the others wait in the order they asked.

    `ask` is synchronous and called in call order as each call is started. A freed slot
    goes to the first call waiting, and the next one is woken only once that call's
    task has resumed: so waiting calls start in call order, whatever order the event
    loop runs woken tasks in (trio shuffles them on purpose).
    """

    __slots__ = ("_holders", "_tickets", "_waiting", "_woken", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._holders: set[str] = set()
        self._waiting: dict[str, None] = {}  # the line, in the order they asked
        self._tickets: dict[str, anyio.Event] = {}  # each queued call's wake-up, until taken
        self._woken: str | None = None  # given a slot, its task not resumed yet

    def ask(self, call_id: str) -> bool:
        """Take a slot for the call now (True), or queue it (False: `take` waits)."""
        if len(self._holders) < self.capacity and not self._waiting and self._woken is None:
            self._holders.add(call_id)
            return True
        self._waiting[call_id] = None
        self._tickets[call_id] = anyio.Event()
        return False

    async def take(self, call_id: str) -> None:
        """Wait until the call queued by `ask` holds its slot."""
        ticket = self._tickets.get(call_id)
        if ticket is None:
            return  # it took a free slot when it asked
        await ticket.wait()
        del self._tickets[call_id]
        if self._woken == call_id:
            self._woken = None
            self._wake()

    def give_back(self, call_id: str) -> None:
        """The call ended (or left the line): its slot goes to the first one waiting."""
        self._tickets.pop(call_id, None)
        if call_id in self._holders:
            self._holders.discard(call_id)
            if self._woken == call_id:
                self._woken = None
        else:
            self._waiting.pop(call_id, None)
        self._wake()

    def _wake(self) -> None:
        if self._woken is None and self._waiting and len(self._holders) < self.capacity:
            first = next(iter(self._waiting))
            del self._waiting[first]
            self._holders.add(first)
            self._woken = first
            self._tickets[first].set()


class CallControl:
    """One run's handle on its tool calls: where each live call is, and the run's slots."""

    __slots__ = ("approver", "live", "slots")

    def __init__(self, config: RunConfig, start: RunStart) -> None:
        self.live: dict[str, Cancellable] = {}
        """The runner of each call that was handed to one and whose step is not over."""
        cap = start.max_concurrent_tools or config.max_concurrent_tools  # the run's, else
        self.slots = Slots(cap) if cap is not None else None
        self.approver: Approver | None = (
            start.approver if start.approver is not None else config.approver
        )
        """The run's approver, else the agent's: agent tools hand it to their inner runs."""

    def nudge(self, news: list[MessageQueued]) -> None:
        """Messages were sent while calls run: their runner reports them now, rather
        than with the next event of a call (which may be long in coming)."""
        runner = next(iter(self.live.values()), None)
        if runner is not None:
            runner.nudge(news)

    def cancel(self, call_id: str, reason: str | None) -> None:
        """Cancel one call (see `AgentRun.cancel_call`)."""
        if reason is not None and not isinstance(reason, str):
            raise SetupError(f"reason must be a string or None, not {type(reason).__name__}")
        runner = self.live.get(call_id)
        if runner is None:
            raise not_running(call_id, "no call of the step under way has this id")
        runner.cancel(call_id, reason)
