"""The chunk loop of a step that may start tools early (see `_early`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from time import perf_counter
from typing import Any

from .._events import Event
from .._redact import redact
from ..output._watch import OutputWatch
from ..wire.chat._assemble import StreamAssembler
from ..wire.responses._assemble import ResponsesAssembler
from ._early import EarlyStarts
from ._step_state import StepState

__all__ = ["early_chunks"]


async def early_chunks(
    chunks: AsyncGenerator[dict[str, Any], None],
    assembler: StreamAssembler | ResponsesAssembler,
    step: StepState,
    early: EarlyStarts,
    watch: OutputWatch | None,
    secret: str | None,
) -> AsyncGenerator[Event, None]:
    """The chunk loop of a step that may start tools early (one hop more per event,
    paid only by agents that opted in): each call that has become final starts
    before the consumer sees the chunk that made it so."""
    async for chunk in chunks:
        if secret is not None and "error" in chunk:
            chunk = redact(chunk, secret)
        events = assembler.feed(chunk)
        if events and step.first_token is None:
            step.first_token = perf_counter()
        also = early.after_chunk(assembler)
        for stream_event in events:
            yield stream_event
        if watch is not None and events:
            for output_event in watch.feed(events):
                yield output_event
        for event in also:
            yield event
