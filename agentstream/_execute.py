"""Running validated tool calls, concurrently where their tools allow."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._convert import clean_text, exception_text, group_members, safe_str
from ._events import Event, ToolFinished, ToolStarted
from ._exceptions import ToolCrashed, ToolError
from ._observe import RunObserver, observing_tool
from ._tools import Tool, ToolContext, format_tool_result

__all__ = ["ToolRun", "describe_exception", "run_tools", "truncate"]

_ERROR_TEXT_LIMIT = 2000


@dataclass(slots=True)
class ToolRun:
    """A validated call waiting to run, and the text its run produced."""

    index: int
    id: str
    tool: Tool
    arguments: dict[str, Any]
    output: str = ""
    finished: bool = False
    """Whether `output` is final (the tool returned, raised or timed out)."""
    crash: BaseException | None = None
    """Set when the tool raised what must end the run (`ToolCrashed`, a Ctrl-C)."""


async def run_tools(
    task_group: TaskGroup,
    calls: list[ToolRun],
    run_id: str,
    step: int,
    context: tuple[Mapping[str, Any], ...],
    timeout: float | None = None,
    max_result_size: int | None = None,
    watchers: tuple[RunObserver, ...] = (),
    before_batch: Callable[[list[ToolRun]], Awaitable[None]] | None = None,
) -> AsyncGenerator[Event, None]:
    """Run the calls in `task_group` and yield their events as they happen.

    Consecutive concurrent calls run together; a call whose tool opted out of
    concurrency runs alone. The tools belong to the run's task group, so they are
    cancelled when the run is left; this generator only relays their events to the
    consumer's task. Each call's `output` is set when it finishes, cut to
    `max_result_size` characters with a note saying so; a call still running after
    `timeout` seconds is stopped and reported as a `TimeoutError`. Each call runs inside
    the `tool_call` context of every watcher (the run's observers). `before_batch` is
    awaited before each batch starts (the run saves that those calls are running).
    """
    limits = _Limits(timeout, max_result_size)
    send, receive = anyio.create_memory_object_stream[Event](math.inf)
    batches: list[list[ToolRun]] = []
    for call in calls:
        if call.tool.concurrent and batches and batches[-1][0].tool.concurrent:
            batches[-1].append(call)
        else:
            batches.append([call])
    with send, receive:
        for batch in batches:
            if before_batch is not None:
                await before_batch(batch)
            for call in batch:
                task_group.start_soon(_run_one, call, run_id, step, context, limits, send, watchers)
            for _ in range(2 * len(batch)):  # each tool reports its start and its end
                event = await receive.receive()
                yield event
                if isinstance(event, ToolFinished):
                    crash = _crash_of(batch, event)
                    if isinstance(crash, ToolCrashed):
                        raise crash from event.error
                    if crash is not None:
                        raise crash


async def _run_one(
    call: ToolRun,
    run_id: str,
    step: int,
    context: tuple[Mapping[str, Any], ...],
    limits: _Limits,
    send: MemoryObjectSendStream[Event],
    watchers: tuple[RunObserver, ...],
) -> None:
    tool = call.tool
    started = ToolStarted(step, call.index, call.id, tool.name, call.arguments)
    _report(send, started)
    ctx = ToolContext(run_id, call.id, tool.name, step, context)
    if watchers:
        with observing_tool(watchers, started) as report:
            finished = await _invoke(call, ctx, limits)
            report(finished)
    else:
        finished = await _invoke(call, ctx, limits)
    _report(send, finished)


async def _invoke(call: ToolRun, ctx: ToolContext, limits: _Limits) -> ToolFinished:
    """Run one call to its end (returned, raised or timed out); set its `output`."""
    tool = call.tool
    started = perf_counter()
    value: Any = None
    error: BaseException | None = None
    timeout = limits.timeout
    with anyio.move_on_after(timeout) as scope:
        try:
            value = await tool.invoke(call.arguments, ctx)
            call.output = format_tool_result(value)
        except ToolError as exc:
            error, call.output = exc, _tool_error_text(exc)
        except BaseException as exc:
            # Whatever a tool raises is that tool's failure, told to the model; only the
            # run's own cancellation goes on (the scope that cancelled catches it).
            if _only_cancellation(exc) and _cancelled_here():
                raise
            value, error, call.output = None, exc, _failure_text(exc)
            call.crash = _crash(exc, tool.name, in_thread=not tool._is_async)
    if scope.cancelled_caught:
        error = TimeoutError(f"the tool did not finish within {timeout:g} s and was stopped")
        call.output = describe_exception(error)
    duration = perf_counter() - started
    call.output = clean_text(call.output)
    size = len(call.output)
    truncated = limits.max_result_size is not None and size > limits.max_result_size
    if truncated:
        call.output = truncate(call.output, limits.max_result_size)  # type: ignore[arg-type]
    call.finished = True
    return ToolFinished(
        ctx.step, call.index, call.id, tool.name, call.output, value, error, duration, truncated
    )


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


def _crash_of(batch: list[ToolRun], event: ToolFinished) -> BaseException | None:
    return next((call.crash for call in batch if call.index == event.index), None)


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


def _report(send: MemoryObjectSendStream[Event], event: Event) -> None:
    """Relay a tool's event; once the run is left, nobody listens and it is dropped.

    A sync tool cannot be interrupted in its worker thread, so it may finish after the
    run that started it was cancelled.
    """
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        send.send_nowait(event)


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, short enough to send to a model; never raises."""
    return exception_text(exc, _ERROR_TEXT_LIMIT)
