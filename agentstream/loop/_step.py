"""Pieces of one step: limits on its stream, checking it ended whole, ids, timings."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import AsyncGenerator
from contextlib import aclosing
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio

from .._events import StepInterrupted
from .._exceptions import RunError, RunTimeout, StreamError
from .._redact import redact_error
from ..wire._bounds import StreamBounds
from ..wire._message import AssembledMessage
from ..wire._partial_call import new_call_id
from ..wire.chat._assemble import StreamAssembler
from ..wire.chat._parts import error_message
from ..wire.chat._stream import ModelStream
from ..wire.responses._assemble import ResponsesAssembler
from ..wire.responses._stream import ResponsesStream
from ._retries import Retries
from ._timeouts import Timeouts

if TYPE_CHECKING:
    from ._step_state import StepState

__all__ = [
    "attempt_failed",
    "check_complete",
    "stream_bounds",
    "tool_limit",
    "with_fresh_ids",
    "within_limits",
]


async def within_limits(
    chunks: AsyncGenerator[dict[str, Any], None],
    limits: Timeouts,
    step_deadline: float,
    run_deadline: float,
) -> AsyncGenerator[dict[str, Any], None]:
    """`chunks`, failing with `RunTimeout` when the next one takes too long.

    For background responses only, whose events come from several streams in turn (see
    `background_events`); a single stream keeps its limits itself (`stream_bounds`).

    The stream has one deadline: the nearest of the step's and the run's ends, which
    stay put, and of the wait allowed for the next chunk (`first_chunk`, then `idle`),
    which moves on with each chunk. A cancel scope bounds each wait and never spans a
    `yield`: one left open across a `yield` would be the consumer's, cancelling its own
    awaits and breaking the nesting of the scopes it opens and closes between chunks.
    """
    # Deadlines in the event loop's clock, so that each wait's scope takes one as it is.
    shift = anyio.current_time() - perf_counter()
    fixed, fixed_limit, fixed_seconds = math.inf, "", 0.0
    if limits.run:
        fixed, fixed_limit, fixed_seconds = run_deadline + shift, "run", limits.run
    if limits.step and step_deadline + shift < fixed:
        fixed, fixed_limit, fixed_seconds = step_deadline + shift, "step", limits.step
    gap, gap_limit = limits.first_chunk, "first_chunk"
    async with aclosing(chunks):
        while True:
            deadline, limit, seconds = fixed, fixed_limit, fixed_seconds
            if gap:
                moving = perf_counter() + shift + gap
                if moving <= deadline:
                    deadline, limit, seconds = moving, gap_limit, gap
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            if scope.cancelled_caught:
                raise RunTimeout(limit, seconds)
            gap, gap_limit = limits.idle, "idle"
            yield chunk


def stream_bounds(limits: Timeouts, sent: float, run_deadline: float) -> StreamBounds | None:
    """The limits of the waits of a stream sent at `sent` (None: it has none).

    The stream keeps them itself (see `StreamBounds`): `within_limits` would cost a
    generator hop and a cancel scope per chunk.
    """
    if not limits.bounds_streams:
        return None
    fixed, fixed_limit, fixed_seconds = math.inf, "", 0.0
    if limits.run:
        fixed, fixed_limit, fixed_seconds = run_deadline, "run", limits.run
    if limits.step and sent + limits.step < fixed:
        fixed, fixed_limit, fixed_seconds = sent + limits.step, "step", limits.step
    return StreamBounds(limits.first_chunk, limits.idle, fixed, fixed_limit, fixed_seconds)


def tool_limit(limits: Timeouts, run_deadline: float) -> float | None:
    """Seconds a tool may run: its own limit, cut by what is left of the run's."""
    left = run_deadline - perf_counter() if limits.run else None
    if limits.tool is None:
        return None if left is None else max(left, 0.0)
    return limits.tool if left is None else max(min(limits.tool, left), 0.0)


def check_complete(
    assembler: StreamAssembler | ResponsesAssembler, stream: ModelStream | ResponsesStream
) -> None:
    """Raise `StreamError` unless the stream ended as a whole, error-free response."""
    if isinstance(assembler, ResponsesAssembler):
        # A terminal event is the Responses API's whole answer; `[DONE]` alone is not.
        error = assembler.stream_error()
        if error is not None:
            raise error
        return
    errors = assembler.errors
    if errors:
        raise StreamError(
            f"the server reported an error in the stream: {error_message(errors[0])}",
            body=errors[0],
        )
    if not stream.done and assembler.finish_reason is None:
        # Servers end with a finish reason, `[DONE]`, or both: with neither, the body
        # may have been cut, and its tool calls must not run.
        raise StreamError("the stream ended early: no finish reason and no [DONE]")


def with_fresh_ids(message: AssembledMessage, used: set[str]) -> AssembledMessage:
    """`message` with a new id for each call whose id the conversation already holds.

    Some servers number calls per response (`call_0` in every step) or repeat an id
    within one; each call must have its own id for its result to be matched to it, and
    for a tool to run at most once per id. `used` gains the ids of `message`.
    """
    calls = list(message.tool_calls)
    for position, call in enumerate(calls):
        if call.id in used:
            calls[position] = call = dataclasses.replace(call, id=new_call_id(), id_generated=True)
        used.add(call.id)
    if calls == list(message.tool_calls):
        return message
    return dataclasses.replace(message, tool_calls=tuple(calls))


def attempt_failed(
    step: StepState,
    assembler: StreamAssembler | ResponsesAssembler,
    exc: RunError,
    retries: Retries,
    retries_left: float,
    rng: random.Random,
    run_deadline: float,
    secret: str | None,
    tried: int = 0,
) -> tuple[float | None, StepInterrupted]:
    """Record a broken attempt: the wait before the next one (`None`: give up), and the
    event that withdraws what it streamed.

    Nothing of a broken attempt is kept or run: the step starts over from the last
    consistent conversation, or the run fails. `tried`: failed attempts of the step
    before its current model took over, whose retries count from there.
    """
    if secret is not None:
        redact_error(exc, secret)
    step.failures.append(exc)
    step.attempt += 1
    delay = retries.delay(exc, len(step.failures) - tried, rng) if retries_left else None
    if delay is not None and perf_counter() + delay >= run_deadline:
        delay = None
    partial = assembler.finish().message
    interrupted = StepInterrupted(
        step.number,
        len(step.failures),
        exc,
        partial.content or "",
        partial.reasoning or "",
        tuple(call.index for call in partial.tool_calls),
        delay,
    )
    return delay, interrupted
