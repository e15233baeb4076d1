"""Feeding events to `ResponsesAssembler` in tests, and reading what it told."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from agentstream import AssembledResponsesOutput, ResponsesAssembler, StreamEvent, ToolCallDelta


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"call_generated_{next(counter)}"


def assemble(
    events: Iterable[Any], **options: Any
) -> tuple[list[StreamEvent], AssembledResponsesOutput]:
    assembler = ResponsesAssembler(new_id=ids(), **options)
    produced = [made for event in events for made in assembler.feed(event)]
    return produced, assembler.finish()


def joined(events: list[StreamEvent], kind: type[Any]) -> str:
    return "".join(event.text for event in events if isinstance(event, kind))


def arguments_told(events: list[StreamEvent], index: int) -> str:
    return "".join(e.delta for e in events if isinstance(e, ToolCallDelta) and e.index == index)
