"""Observers: what `Agent(observers=...)` takes, and how a run calls them.

An observer watches runs from inside (tracing, metrics, audit logs) without the core
knowing what it does with them. A run calls its observers only when the agent has some:
a run without observers pays one empty-tuple check per run and per tool call.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, aclosing, contextmanager
from typing import Any, Protocol

from .._events import Event, ToolFinished, ToolStarted

__all__ = ["Observer", "RunObserver", "WatchedRun", "observed", "observing_tool"]


class WatchedRun(Protocol):
    """What an observer is shown of a run as it is entered (an `AgentRun` is one)."""

    @property
    def run_id(self) -> str:
        """The run's id (a resumed run keeps its first id)."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (a copy)."""


class RunObserver(Protocol):
    """Watches one run; made by `Observer.observe` when the run is entered.

    Its methods are called in the run's own tasks and must not raise: an observer that
    fails would fail the run.
    """

    def event(self, event: Event) -> None:
        """Each event of the run, as it is produced and before the caller receives it."""

    def tool_call(
        self, started: ToolStarted
    ) -> AbstractContextManager[Callable[[ToolFinished], object]]:
        """A context the tool runs inside, in the tool's own task.

        Entered just before the tool is invoked and left after it has finished, so what
        the tool does (context variables it reads, spans it opens) happens inside. What
        it gives on entry is called with the `ToolFinished` before it is left. When the
        run is cancelled mid-call, the cancellation passes through it instead.
        """

    def end(self, error: BaseException | None) -> None:
        """The run is over and its tools have stopped.

        Called when the `async with` block of the run is left, after `RunFinished` or
        `RunFailed` if the run got that far; `error` is the exception leaving the block
        (a cancellation, or one raised by the caller's code), if any.
        """


class Observer(Protocol):
    """Watches the runs of an agent; give one to `Agent(observers=[...])`.

    `observe` is called when a run is entered, in the caller's task; it returns the
    run's `RunObserver`, or None to leave this run alone (it then costs nothing more).
    """

    def observe(self, run: WatchedRun) -> RunObserver | None:
        """The observer of `run`, or None not to watch it."""


async def observed(
    events: AsyncGenerator[Event, None], watchers: tuple[RunObserver, ...]
) -> AsyncGenerator[Event, None]:
    """`events`, each shown to every watcher first."""
    async with aclosing(events):
        async for event in events:
            for watcher in watchers:
                watcher.event(event)
            yield event


@contextmanager
def observing_tool(
    watchers: tuple[RunObserver, ...], started: ToolStarted
) -> Iterator[Callable[[ToolFinished], None]]:
    """Every watcher's `tool_call` context at once; gives one function reporting to all."""
    with ExitStack() as stack:
        reports = [stack.enter_context(watcher.tool_call(started)) for watcher in watchers]

        def report(finished: ToolFinished) -> None:
            for each in reports:
                each(finished)

        yield report
