"""Running validated tool calls, concurrently where their tools allow."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._events import Event, ToolFinished, ToolStarted
from ._exceptions import ToolError
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


async def run_tools(
    task_group: TaskGroup,
    calls: list[ToolRun],
    run_id: str,
    step: int,
    context: tuple[Mapping[str, Any], ...],
    timeout: float | None = None,
    max_result_size: int | None = None,
    watchers: tuple[RunObserver, ...] = (),
) -> AsyncGenerator[Event, None]:
    """Run the calls in `task_group` and yield their events as they happen.

    Consecutive concurrent calls run together; a call whose tool opted out of
    concurrency runs alone. The tools belong to the run's task group, so they are
    cancelled when the run is left; this generator only relays their events to the
    consumer's task. Each call's `output` is set when it finishes, cut to
    `max_result_size` characters with a note saying so; a call still running after
    `timeout` seconds is stopped and reported as a `TimeoutError`. Each call runs inside
    the `tool_call` context of every watcher (the run's observers).
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
            for call in batch:
                task_group.start_soon(_run_one, call, run_id, step, context, limits, send, watchers)
            for _ in range(2 * len(batch)):  # each tool reports its start and its end
                yield await receive.receive()


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
    error: Exception | None = None
    timeout = limits.timeout
    with anyio.move_on_after(timeout) as scope:
        try:
            value = await tool.invoke(call.arguments, ctx)
            call.output = format_tool_result(value)
        except ToolError as exc:
            error, call.output = exc, exc.message
        except Exception as exc:
            error, call.output = exc, describe_exception(exc)
    if scope.cancelled_caught:
        error = TimeoutError(f"the tool did not finish within {timeout:g} s and was stopped")
        call.output = describe_exception(error)
    duration = perf_counter() - started
    size = len(call.output)
    truncated = limits.max_result_size is not None and size > limits.max_result_size
    if truncated:
        call.output = truncate(call.output, limits.max_result_size)  # type: ignore[arg-type]
    call.finished = True
    return ToolFinished(
        ctx.step, call.index, call.id, tool.name, call.output, value, error, duration, truncated
    )


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


def describe_exception(exc: Exception) -> str:
    """`Type: message`, short enough to send to a model."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[:_ERROR_TEXT_LIMIT] + "..."
