"""Running validated tool calls, concurrently where their tools allow."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeAlias

import anyio
import anyio.from_thread
from anyio.abc import TaskGroup

from .._convert import clean_text
from .._events import (
    Event,
    MessageQueued,
    ToolCancelled,
    ToolFinished,
    ToolPaused,
    ToolProgress,
    ToolQueued,
    ToolStarted,
)
from .._exceptions import ToolCrashed, ToolError
from .._usage import Usage
from ..tools._media import Media, tool_output
from ..tools._tool import Tool, ToolContext
from ._cancel import CallControl, Slots, cancelled_output, not_running
from ._failures import (
    crash_of,
    describe_exception,
    failure_text,
    only_cancellation,
    tool_error_text,
)
from ._inbox import Inbox, Progress
from ._nest import SubRunPause, nest, step_usage
from ._observe import RunObserver, observing_tool
from ._steer import announce

__all__ = ["ToolRun", "ToolRunner", "describe_exception", "truncate"]


@dataclass(slots=True)
class ToolRun:
    """A validated call waiting to run, and what its run produced."""

    index: int
    id: str
    tool: Tool
    arguments: dict[str, Any]
    output: str = ""
    finished: bool = False
    """Whether `output` is final (the tool returned, raised or timed out)."""
    value: Any = None
    error: BaseException | None = None
    duration: float = 0.0
    truncated: bool = False
    early: bool = False
    """Started while the response was still streaming."""
    reused: bool = False
    """Holds the result of the same call from a broken attempt; it does not run."""
    scope: anyio.CancelScope | None = None
    """Set when the call starts: cancelling it stops this call alone."""
    progress: Progress | None = None
    crash: BaseException | None = None
    """Set when the tool raised what must end the run (`ToolCrashed`, a Ctrl-C)."""
    cancel_asked: bool = False
    """Cancelled by `AgentRun.cancel_call`: it ends answered as such."""
    cancel_reason: str | None = None
    context: ToolContext | None = None
    usage: Usage | None = None
    """What the runs inside the call used (an agent tool's inner steps), once they say."""
    pause: SubRunPause | None = None
    """Set when an agent tool's inner run paused for approval: the call waits."""
    resume: Any = None
    """For an agent tool taken up on resume: its inner run's state and decisions."""
    media: tuple[Media, ...] = ()
    """The images and files the tool returned (within the size limit)."""

    @property
    def started(self) -> bool:
        return self.scope is not None

    @property
    def cancelled(self) -> bool:
        return self.scope is not None and self.scope.cancel_called


_POLL = 0.05  # seconds between looks at the progress of tools running in worker threads


Item: TypeAlias = Event | ToolRun | None
"""What a runner's inbox holds: an event, a call with fresh progress, a wake-up."""


class ToolRunner:
    """Runs one step's tool calls in the run's task group and relays their events.

    Calls may be started one by one (`start`, for early starts while the response
    streams) and the rest are handed over with `begin()`; `next()` starts them and
    relays the events of every call, those started before included. `ready()` hands
    over the events that have arrived, without waiting. `close()` when the step is
    done. Each call's results are set on its `ToolRun`: its `output` cut to
    `max_result_size` characters with a note saying so; a call still running after its
    timeout is stopped and reported as a `TimeoutError`.
    """

    def __init__(
        self,
        task_group: TaskGroup,
        run_id: str,
        step: int,
        max_result_size: int | None,
        watchers: tuple[RunObserver, ...] = (),
        deps: Any = None,
        control: CallControl | None = None,
        max_media_size: int | None = None,
    ) -> None:
        self._control = control  # the run's: live calls by id, its slots if capped
        self._known: dict[str, ToolRun] = {}
        self._task_group = task_group
        self._max_media_size = max_media_size
        self._watchers = watchers
        self._deps = deps  # the run's `deps`, handed to each call's ToolContext
        self._run_id = run_id
        self._step = step
        self._max_result_size = max_result_size
        self._inbox: Inbox[Item] = Inbox()
        self._news: list[MessageQueued] = []  # messages sent while the calls run (`nudge`)
        self._calls: list[ToolRun] = []
        self._by_index: dict[int, ToolRun] = {}
        # What `begin` takes and `next` works through: the batches not started yet (the
        # next at the end), one that waits for the calls before it, the calls waited for.
        self._batches: list[list[ToolRun]] = []
        self._next_batch: list[ToolRun] | None = None
        self._waiting: list[ToolRun] = []
        self._start_args: tuple[Any, float | None, Any] = ((), None, None)
        self._doomed: ToolRun | None = None  # a call whose crash `next` raises

    def start(
        self,
        call: ToolRun,
        context: tuple[Mapping[str, Any], ...],
        timeout: float | None,
    ) -> None:
        """Start one call now (a reused call reports its kept result instead)."""
        call.scope = anyio.CancelScope()
        call.progress = Progress(functools.partial(self._inbox.put, call))
        self._calls.append(call)
        self._by_index[call.index] = call
        if self._known.get(call.id) is not call:  # (`begin` registers the calls it takes)
            self._register(call)
        if call.reused:
            step, tool = self._step, call.tool
            self._inbox.put(ToolStarted(step, call.index, call.id, tool.name, call.arguments))
            self._inbox.put(_finished(step, call, reused=True))
            return
        slots = self._control.slots if self._control is not None else None
        if slots is not None and not slots.ask(call.id):  # asked in call order
            self._inbox.put(ToolQueued(self._step, call.index, call.id, call.tool.name))
        limits = _Limits(timeout, self._max_result_size, self._max_media_size)
        self._task_group.start_soon(
            functools.partial(_run_one, deps=self._deps, slots=slots, control=self._control),
            call, self._run_id, self._step, context, limits, self._inbox, self._watchers,
        )  # fmt: skip

    def _register(self, call: ToolRun) -> None:
        self._known[call.id] = call
        if self._control is not None:
            self._control.live[call.id] = self

    def cancel(self, call_id: str, reason: str | None) -> None:
        """Cancel one call: stop it if it runs or waits, and answer it as cancelled."""
        call = self._known.get(call_id)
        if call is None or call.finished or call.cancel_asked or call.cancelled:
            why = "it has already finished or been cancelled" if call else "unknown id"
            raise not_running(call_id, why)
        call.cancel_asked, call.cancel_reason = True, reason
        if call.context is not None:
            call.context._mark_cancelled()  # a sync tool's thread may look and return
        if call.scope is not None:
            call.scope.cancel()  # started (maybe queued): `_run_one` reports its end
        else:
            for event in _cancelled(self._step, call):
                self._inbox.put(event)

    def nudge(self, news: list[MessageQueued]) -> None:
        """Report messages sent (`AgentRun.send`) now: taken from `news` when relayed."""
        self._news = news
        self._inbox.put(None)

    def ready(self) -> list[Event]:
        """The events that have arrived, and fresh progress of the running tools."""
        events: list[Event] = []
        items = self._inbox.items
        while items:
            item = items.popleft()
            if item is None or isinstance(item, ToolRun | ToolFinished):
                self._translate(item, events)
            else:  # an event to pass on as it is
                events.append(item)
        for call in self._calls:
            progress = call.progress  # (looked at inline: most calls never report)
            fresh = progress is not None and progress.latest is not progress.emitted
            if fresh and not call.finished and not call.cancelled:
                self._add_progress(call, events)
        return events

    def begin(
        self,
        calls: list[ToolRun],
        context: tuple[Mapping[str, Any], ...],
        timeout: float | None,
        before_batch: Callable[[list[ToolRun]], Awaitable[None]] | None = None,
    ) -> None:
        """Take the step's calls: those not started yet start in batches as `next()`
        relays the events of every call.

        Consecutive concurrent calls run together; a call whose tool opted out of
        concurrency runs alone, after every call started before it has ended.
        `before_batch` is awaited with the calls of each batch just before they start
        (the run saves that they are running).
        """
        for call in calls:  # an early call may have ended, and crashed, before this
            if call.finished:
                _raise_crash(call)
            self._register(call)
        batches: list[list[ToolRun]] = []
        for call in calls:
            if call.tool.concurrent and batches and batches[-1][0].tool.concurrent:
                batches[-1].append(call)
            else:
                batches.append([call])
        batches.reverse()  # taken from the end
        self._batches = batches
        self._start_args = (context, timeout, before_batch)

    async def next(self) -> list[Event]:
        """The events that arrive next, waiting for them; [] once all calls have ended.

        A list, not a generator: a hop per event through each layer would cost more
        than the relay. What a tool raised that must end the run is raised at the next
        call, once its `ToolFinished` has been handed over.
        """
        if self._doomed is not None:
            _raise_crash(self._doomed)
        while True:
            # Whatever has arrived first: while the consumer handles one list, the
            # calls may finish and report their ends; those must be relayed, not dropped.
            events = self.ready()
            if events:
                return events if self._doomed is None else self._up_to_crash(events)
            if self._waiting:
                self._waiting = [call for call in self._waiting if not call.finished]
            if not self._waiting:
                if self._next_batch is None and not self._batches:
                    return events  # every call has ended
                await self._advance()
                continue
            poll = False  # a tool reports progress from a thread: looked at in turns
            for call in self._calls:
                progress = call.progress
                threaded = progress is not None and progress.threaded
                if threaded and not call.finished and not call.cancelled:
                    poll = True
            # Nothing in the inbox (`ready` took it all): wait for what comes next.
            self._inbox.waiter = waiter = anyio.Event()
            try:
                if poll:
                    with anyio.move_on_after(_POLL):
                        await waiter.wait()
                else:
                    await waiter.wait()
            finally:
                self._inbox.waiter = None

    async def _advance(self) -> None:
        """Start the next batch, or wait for the calls started before it first."""
        context, timeout, before_batch = self._start_args
        batch = self._next_batch
        if batch is None:
            batch = self._batches.pop()
            if not batch[0].tool.concurrent:
                running = [c for c in self._calls if not c.finished and not c.cancelled]
                if running:  # it runs alone: first the calls started before it end
                    self._next_batch, self._waiting = batch, running
                    return
        self._next_batch = None
        starting = [call for call in batch if not call.started and not call.finished]
        if before_batch is not None and starting:
            await before_batch(starting)
        for call in starting:
            self.start(call, context, timeout)
        self._waiting = batch

    def _up_to_crash(self, events: list[Event]) -> list[Event]:
        """`events` up to the end of the call whose crash ends the run (raised next)."""
        doomed = self._doomed
        for position, event in enumerate(events):
            if isinstance(event, ToolFinished) and self._by_index.get(event.index) is doomed:
                return events[: position + 1]
        return events

    def close(self) -> None:
        """Stop relaying: events of tools still running (abandoned threads) are dropped."""
        self._inbox.close()
        for call in self._calls:
            # A call and its progress slot or context refer to each other (through the
            # slot's wake-up and the context's relay): let go here, the step leaves no
            # cycle for the garbage collector, whose full passes stall a busy process.
            call.progress = call.context = None
        if self._control is not None:
            live = self._control.live
            for call_id in self._known:
                if live.get(call_id) is self:
                    del live[call_id]

    def _translate(self, item: Item, events: list[Event]) -> None:
        if item is None:  # a message was sent (`nudge`)
            events.extend(announce(self._news))
            return
        if isinstance(item, ToolRun):  # a progress marker
            if not item.finished and not item.cancelled:
                self._add_progress(item, events)
            return
        if isinstance(item, ToolFinished):
            call = self._by_index.get(item.index)
            if call is not None:
                progress = call.progress
                if progress is not None and progress.latest is not progress.emitted:
                    self._add_progress(call, events)  # the last report comes before the end
                if call.crash is not None and self._doomed is None:
                    self._doomed = call  # what it raised ends the run once this is out
        events.append(item)

    def _add_progress(self, call: ToolRun, events: list[Event]) -> None:
        latest = call.progress.take() if call.progress is not None else None
        if latest is not None:
            fraction, message, output = latest
            events.append(
                ToolProgress(
                    self._step, call.index, call.id, call.tool.name, fraction, message, output
                )
            )


async def _run_one(
    call: ToolRun,
    run_id: str,
    step: int,
    context: tuple[Mapping[str, Any], ...],
    limits: _Limits,
    inbox: Inbox[Item],
    watchers: tuple[RunObserver, ...] = (),
    *,
    deps: Any = None,
    slots: Slots | None = None,
    control: CallControl | None = None,
) -> None:
    assert call.scope is not None
    try:
        with call.scope:
            if call.scope.cancel_called:
                return  # withdrawn (or cancelled) before it began; see below
            if slots is not None:
                await slots.take(call.id)
            tool = call.tool
            started = ToolStarted(step, call.index, call.id, tool.name, call.arguments)
            inbox.put(started)
            report = call.progress.report if call.progress is not None else None
            relay = functools.partial(_relay, inbox, step, call)
            call.context = ctx = ToolContext(
                run_id, call.id, tool.name, step, context, call.early, report, deps, relay,
                call.resume, control.approver if control is not None else None,
            )  # fmt: skip
            if watchers:
                with observing_tool(watchers, started) as observed:
                    finished = await _invoke(call, ctx, limits, step)
                    observed(finished)
            else:
                finished = await _invoke(call, ctx, limits, step)
            if call.cancel_asked:
                return  # it ended before the cancel reached it: answered as cancelled below
            if call.pause is not None:
                requests = call.pause.requests
                inbox.put(ToolPaused(step, call.index, call.id, tool.name, requests))
                return
            inbox.put(finished)
    finally:
        if slots is not None:
            slots.give_back(call.id)
        if call.context is not None and (call.cancel_asked or not call.finished):
            call.context._mark_cancelled()
        if call.cancel_asked:
            for event in _cancelled(step, call):
                inbox.put(event)


def _cancelled(step: int, call: ToolRun) -> tuple[ToolCancelled, ToolFinished]:
    """A call cancelled by `cancel_call` ends answered: the model is told so."""
    call.value = call.error = call.crash = None
    call.output, call.truncated = cancelled_output(call.cancel_reason), False
    call.finished = True
    name = call.tool.name
    reason = call.cancel_reason or ""
    return ToolCancelled(step, call.index, call.id, name, reason, False, True), _finished(
        step, call
    )


def _relay(inbox: Inbox[Item], step: int, call: ToolRun, event: Any) -> None:
    """Send on an event of the agent run inside `call` (an agent tool), wrapped; a
    `Usage` is what a cancelled inner run used unreported: counted, not sent."""
    usage = event if isinstance(event, Usage) else step_usage(event)
    if usage is not None:
        call.usage = usage if call.usage is None else call.usage + usage
    if not isinstance(event, Usage):
        inbox.put(nest(step, call.index, call.id, call.tool.name, event))


async def _invoke(call: ToolRun, ctx: ToolContext, limits: _Limits, step: int) -> ToolFinished:
    """Run one call to its end (returned, raised or timed out); set its results."""
    tool = call.tool
    started = perf_counter()
    timeout = limits.timeout
    with anyio.move_on_after(timeout) as scope:
        try:
            call.value = await tool.invoke(call.arguments, ctx)
            call.output, call.media = tool_output(call.value, limits.max_media_size)
        except SubRunPause as pause:  # the agent inside waits for a person: no result yet
            call.pause = pause
        except ToolError as exc:
            call.error, call.output = exc, tool_error_text(exc)
        except BaseException as exc:
            # Whatever a tool raises is that tool's failure, told to the model; only
            # the run's own cancellation goes on (the scope that cancelled catches it).
            if only_cancellation(exc) and _cancelled_here():
                raise
            call.value, call.error, call.output = None, exc, failure_text(exc)
            call.crash = crash_of(exc, tool.name, in_thread=not tool._is_async)
    if scope.cancelled_caught:
        ctx._mark_cancelled()  # a sync tool's thread runs on: it may look and return
        call.value, call.media = None, ()
        call.error = TimeoutError(f"the tool did not finish within {timeout:g} s and was stopped")
        call.output = describe_exception(call.error)
    call.duration = perf_counter() - started
    call.output = clean_text(call.output)
    size = len(call.output)
    call.truncated = limits.max_result_size is not None and size > limits.max_result_size
    if call.truncated:
        call.output = truncate(call.output, limits.max_result_size)  # type: ignore[arg-type]
    call.finished = True
    return _finished(step, call)


def _finished(step: int, call: ToolRun, *, reused: bool = False) -> ToolFinished:
    return ToolFinished(
        step, call.index, call.id, call.tool.name, call.output, call.value, call.error,
        call.duration, call.truncated, reused, call.media,
    )  # fmt: skip


def _cancelled_here() -> bool:
    """Whether the current task is being cancelled by a scope around it (or its deadline)."""
    return anyio.current_effective_deadline() <= anyio.current_time()


def _raise_crash(call: ToolRun) -> None:
    crash = call.crash
    if isinstance(crash, ToolCrashed):
        raise crash from call.error
    if crash is not None:
        raise crash


@dataclass(frozen=True, slots=True)
class _Limits:
    timeout: float | None
    max_result_size: int | None
    max_media_size: int | None = None


def truncate(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, with a note for the model saying so."""
    return (
        f"{text[:limit]}\n[truncated: the result has {len(text)} characters; "
        f"only the first {limit} are shown]"
    )
