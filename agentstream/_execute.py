"""Running validated tool calls, concurrently where their tools allow."""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import anyio
import anyio.from_thread
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._convert import clean_text, exception_text, group_members, safe_str
from ._events import Event, ToolFinished, ToolProgress, ToolStarted
from ._exceptions import ToolCrashed, ToolError
from ._observe import RunObserver, observing_tool
from ._tools import Tool, ToolContext, format_tool_result

__all__ = ["ToolRun", "ToolRunner", "describe_exception", "run_tools", "truncate"]

_ERROR_TEXT_LIMIT = 2000


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
    progress: _Progress | None = None
    crash: BaseException | None = None
    """Set when the tool raised what must end the run (`ToolCrashed`, a Ctrl-C)."""

    @property
    def started(self) -> bool:
        return self.scope is not None

    @property
    def cancelled(self) -> bool:
        return self.scope is not None and self.scope.cancel_called


class _Progress:
    """The latest progress report of one call, written by its tool from any thread.

    Reports are coalesced: each replaces the last. From the event loop's thread the
    first report after a delivery wakes the relay (one marker in its stream at most).
    A worker thread cannot touch the stream without waiting for the loop: its first
    report makes that one hop (so the relay learns of it), later ones only fill the
    slot, which the relay reads every `_POLL` seconds while that tool runs. Tools that
    never report cost the relay nothing.
    """

    __slots__ = ("emitted", "latest", "loop_thread", "pending", "threaded", "wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.latest: tuple[float | None, str | None, str | None] | None = None
        self.emitted: object = None
        self.pending = False
        self.threaded = False  # has reported from a worker thread: the relay polls it
        self.wake = wake
        self.loop_thread = threading.get_ident()

    def report(self, fraction: float | None, message: str | None, output: str | None) -> None:
        self.latest = (fraction, message, output)  # one assignment: safe from a thread
        if threading.get_ident() == self.loop_thread:
            if not self.pending:
                self.pending = True
                self.wake()
        elif not self.threaded:
            self.threaded = True
            # Not an anyio worker thread, or the run is over: the slot is read anyway
            # when the tool ends.
            with contextlib.suppress(Exception):
                anyio.from_thread.run_sync(self.wake)

    def take(self) -> tuple[float | None, str | None, str | None] | None:
        """The latest report if it has not been delivered yet."""
        self.pending = False
        latest = self.latest
        if latest is None or latest is self.emitted:
            return None
        self.emitted = latest
        return latest


_POLL = 0.05  # seconds between looks at the progress of tools running in worker threads


class ToolRunner:
    """Runs one step's tool calls in the run's task group and relays their events.

    Calls may be started one by one (`start`, for early starts while the response
    streams) and the rest run with `run()`, which also relays the events of the calls
    started before. `ready()` hands over the events that have arrived, without waiting.
    `close()` when the step is done. Each call's results are set on its `ToolRun`: its
    `output` cut to `max_result_size` characters with a note saying so; a call still
    running after its timeout is stopped and reported as a `TimeoutError`.
    """

    def __init__(
        self,
        task_group: TaskGroup,
        run_id: str,
        step: int,
        max_result_size: int | None,
        watchers: tuple[RunObserver, ...] = (),
        deps: Any = None,
    ) -> None:
        self._task_group = task_group
        self._watchers = watchers
        self._deps = deps  # the run's `deps`, handed to each call's ToolContext
        self._run_id = run_id
        self._step = step
        self._max_result_size = max_result_size
        self._send, self._receive = anyio.create_memory_object_stream[Event | ToolRun](math.inf)
        self._calls: list[ToolRun] = []
        self._by_index: dict[int, ToolRun] = {}

    def start(
        self,
        call: ToolRun,
        context: tuple[Mapping[str, Any], ...],
        timeout: float | None,
    ) -> None:
        """Start one call now (a reused call reports its kept result instead)."""
        call.scope = anyio.CancelScope()
        call.progress = _Progress(functools.partial(_report, self._send, call))
        self._calls.append(call)
        self._by_index[call.index] = call
        if call.reused:
            step, tool = self._step, call.tool
            _report(self._send, ToolStarted(step, call.index, call.id, tool.name, call.arguments))
            _report(self._send, _finished(step, call, reused=True))
            return
        limits = _Limits(timeout, self._max_result_size)
        self._task_group.start_soon(
            functools.partial(_run_one, deps=self._deps),
            call, self._run_id, self._step, context, limits, self._send, self._watchers,
        )  # fmt: skip

    def ready(self) -> list[Event]:
        """The events that have arrived, and fresh progress of the running tools."""
        events: list[Event] = []
        while True:
            try:
                item = self._receive.receive_nowait()
            except anyio.WouldBlock:
                break
            self._translate(item, events)
        for call in self._calls:
            if not call.finished and not call.cancelled:
                self._add_progress(call, events)
        return events

    async def run(
        self,
        calls: list[ToolRun],
        context: tuple[Mapping[str, Any], ...],
        timeout: float | None,
        before_batch: Callable[[list[ToolRun]], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Run the calls not started yet and yield every call's events until all end;
        then close the runner (see `close`), also when left before.

        Consecutive concurrent calls run together; a call whose tool opted out of
        concurrency runs alone, after every call started before it has ended.
        `before_batch` is awaited with the calls of each batch just before they start
        (the run saves that they are running).
        """
        try:
            for call in calls:  # an early call may have ended, and crashed, before this
                if call.finished:
                    _raise_crash(call)
            batches: list[list[ToolRun]] = []
            for call in calls:
                if call.tool.concurrent and batches and batches[-1][0].tool.concurrent:
                    batches[-1].append(call)
                else:
                    batches.append([call])
            for batch in batches:
                if not batch[0].tool.concurrent:
                    running = [c for c in self._calls if not c.finished and not c.cancelled]
                    while (events := await self._arrived(running)) is not None:
                        for event in events:
                            yield event
                            self._check(event)
                starting = [call for call in batch if not call.started]
                if before_batch is not None and starting:
                    await before_batch(starting)
                for call in starting:
                    self.start(call, context, timeout)
                while (events := await self._arrived(batch)) is not None:
                    for event in events:
                        yield event
                        self._check(event)
        finally:
            self.close()

    def close(self) -> None:
        """Stop relaying: events of tools still running (abandoned threads) are dropped."""
        self._send.close()
        self._receive.close()

    async def _arrived(self, calls: list[ToolRun]) -> list[Event] | None:
        """The events that have arrived, waiting for one if none has; None once `calls`
        have all ended and every event is out.

        A coroutine called in a loop rather than a generator: no hop per event. The
        loop calls it again after each batch, so ends reported while a slow consumer
        held an event are relayed, not dropped.
        """
        arrived = self.ready()
        if arrived:
            return arrived
        for call in calls:  # loops, not generators: a generator costs a call per item
            if not call.finished:
                break
        else:
            return None
        threads = False
        for c in self._calls:
            if c.progress is not None and c.progress.threaded and not c.finished:
                threads = threads or not c.cancelled
        events: list[Event] = []
        if threads:  # come back to poll the tools in worker threads
            with anyio.move_on_after(_POLL):
                self._translate(await self._receive.receive(), events)
        else:  # without a scope: it costs as much as relaying the events
            self._translate(await self._receive.receive(), events)
        return events

    def _check(self, event: Event) -> None:
        """Raise what a tool raised that must end the run, once its end is relayed."""
        if isinstance(event, ToolFinished):
            call = self._by_index.get(event.index)
            if call is not None:
                _raise_crash(call)

    def _translate(self, item: Event | ToolRun, events: list[Event]) -> None:
        if isinstance(item, ToolRun):  # a progress marker
            if not item.finished and not item.cancelled:
                self._add_progress(item, events)
            return
        if isinstance(item, ToolFinished):
            call = self._by_index.get(item.index)
            if call is not None:
                self._add_progress(call, events)  # the last report comes before the end
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


def run_tools(
    task_group: TaskGroup,
    calls: list[ToolRun],
    run_id: str,
    step: int,
    context: tuple[Mapping[str, Any], ...],
    timeout: float | None = None,
    max_result_size: int | None = None,
    watchers: tuple[RunObserver, ...] = (),
    before_batch: Callable[[list[ToolRun]], Awaitable[None]] | None = None,
    deps: Any = None,
) -> AsyncGenerator[Event, None]:
    """Run the calls in `task_group` and yield their events as they happen (see `ToolRunner`).

    The tools belong to the run's task group, so they are cancelled when the run is
    left; this generator only relays their events to the consumer's task. Each call
    runs inside the `tool_call` context of every watcher (the run's observers). Iterate
    it at once: the runner it makes is closed when the generator ends.
    """
    runner = ToolRunner(task_group, run_id, step, max_result_size, watchers, deps)
    # The runner's own generator, not one relaying it: a hop per event less.
    return runner.run(calls, context, timeout, before_batch)


async def _run_one(
    call: ToolRun,
    run_id: str,
    step: int,
    context: tuple[Mapping[str, Any], ...],
    limits: _Limits,
    send: MemoryObjectSendStream[Event | ToolRun],
    watchers: tuple[RunObserver, ...] = (),
    *,
    deps: Any = None,
) -> None:
    assert call.scope is not None
    with call.scope:
        if call.scope.cancel_called:
            return  # withdrawn before it began
        tool = call.tool
        started = ToolStarted(step, call.index, call.id, tool.name, call.arguments)
        _report(send, started)
        report = call.progress.report if call.progress is not None else None
        ctx: ToolContext = ToolContext(
            run_id, call.id, tool.name, step, context, call.early, report, deps
        )
        if watchers:
            with observing_tool(watchers, started) as observed:
                finished = await _invoke(call, ctx, limits, step)
                observed(finished)
        else:
            finished = await _invoke(call, ctx, limits, step)
        _report(send, finished)


async def _invoke(call: ToolRun, ctx: ToolContext, limits: _Limits, step: int) -> ToolFinished:
    """Run one call to its end (returned, raised or timed out); set its results."""
    tool = call.tool
    started = perf_counter()
    timeout = limits.timeout
    with anyio.move_on_after(timeout) as scope:
        try:
            call.value = await tool.invoke(call.arguments, ctx)
            call.output = format_tool_result(call.value)
        except ToolError as exc:
            call.error, call.output = exc, _tool_error_text(exc)
        except BaseException as exc:
            # Whatever a tool raises is that tool's failure, told to the model; only
            # the run's own cancellation goes on (the scope that cancelled catches it).
            if _only_cancellation(exc) and _cancelled_here():
                raise
            call.value, call.error, call.output = None, exc, _failure_text(exc)
            call.crash = _crash(exc, tool.name, in_thread=not tool._is_async)
    if scope.cancelled_caught:
        call.value = None
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
        call.duration, call.truncated, reused,
    )  # fmt: skip


def _cancelled_here() -> bool:
    """Whether the current task is being cancelled by a scope around it (or its deadline)."""
    return anyio.current_effective_deadline() <= anyio.current_time()


def _leaves(exc: BaseException, limit: int = 1000) -> list[BaseException]:
    """The exceptions inside `exc` (itself unless a group), looked at without recursion."""
    leaves: list[BaseException] = []
    pending = [exc]
    while pending and len(leaves) + len(pending) <= limit:
        item = pending.pop()
        members = group_members(item)
        if members is None:
            leaves.append(item)
        else:
            pending.extend(members)
    return leaves + pending


def _only_cancellation(exc: BaseException) -> bool:
    cancelled = anyio.get_cancelled_exc_class()
    return all(isinstance(leaf, cancelled) for leaf in _leaves(exc))


def _crash(exc: BaseException, name: str, *, in_thread: bool) -> BaseException | None:
    """What ends the run instead of going to the model: SystemExit, or KeyboardInterrupt.

    A KeyboardInterrupt in the event loop's thread may be the user's Ctrl-C, so it goes
    on as one (before anything else); in a sync tool's worker thread, where no signal
    lands, the tool raised it itself, which is a crash like SystemExit.
    """
    leaves = _leaves(exc)
    if not in_thread:
        interrupt = next((leaf for leaf in leaves if isinstance(leaf, KeyboardInterrupt)), None)
        if interrupt is not None:
            return interrupt
    for leaf in leaves:
        if isinstance(leaf, (SystemExit, KeyboardInterrupt)):
            return ToolCrashed(f"the tool {name!r} raised {exception_text(leaf)}; the run stops")
    return None


def _tool_error_text(exc: ToolError) -> str:
    """The message a tool chose to send, as text, whatever it put in `message`."""
    try:
        message = exc.message
    except Exception:
        return describe_exception(exc)
    return message if type(message) is str else safe_str(message)


def _failure_text(exc: BaseException) -> str:
    if _only_cancellation(exc):
        return (
            f"{type(exc).__name__}: the tool was cancelled by something other than the run "
            "and did not finish"
        )
    return describe_exception(exc)


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


def truncate(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, with a note for the model saying so."""
    return (
        f"{text[:limit]}\n[truncated: the result has {len(text)} characters; "
        f"only the first {limit} are shown]"
    )


def _report(send: MemoryObjectSendStream[Event | ToolRun], event: Event | ToolRun) -> None:
    """Relay a tool's event; once the run is left, nobody listens and it is dropped.

    A sync tool cannot be interrupted in its worker thread, so it may finish after the
    run that started it was cancelled.
    """
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        send.send_nowait(event)


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, short enough to send to a model; never raises."""
    return exception_text(exc, _ERROR_TEXT_LIMIT)
