"""Early starts: a tool begins the moment its call is final, while the response streams.

With `Agent(early_tools=True)`, a call to a tool made with `early=True` starts as soon
as the assembler reports it settled (`StreamAssembler.settled`: the stream has moved
past it; `ResponsesAssembler.settled`: its `function_call_arguments.done` or
`output_item.done` came; on both wires its arguments are one strictly valid JSON
object), once it has passed the
same checks as at the end of a step (a known tool, arguments that fit the schema, the
limits on tool calls). A tool that may need approval (`needs_approval` set, even as a
rule that decides per call) never starts early.

What the model is told is decided exactly as without early starts, when the step has
ended whole: an early call whose call is still in the whole response, unchanged, is
kept (it never runs a second time in that step); every other early call is withdrawn
(cancelled if still running, its result dropped, `ToolCancelled` says so). A broken
attempt (a cut stream, an error, a stall, `length`, `content_filter`) withdraws them
all. When the retry asks for the same call again (same tool, same arguments), the
result a finished early call returned is reused if its tool is `idempotent`; any other
tool runs again, since the model never saw the first result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._events import Event, ToolCallReady, ToolCancelled
from ..wire._message import AssembledMessage, AssembledToolCall
from ..wire._partial_call import new_call_id
from ..wire.chat._assemble import StreamAssembler
from ..wire.responses._assemble import ResponsesAssembler
from ._execute import ToolRun, ToolRunner
from ._validate import over_limit, validate_call

if TYPE_CHECKING:
    from ..state._state import RunState
    from ._config import RunConfig

__all__ = ["EarlyStarts", "ReuseKey", "reuse_key"]

ReuseKey = tuple[str, str]
"""A tool's name and its arguments as canonical JSON: the same call, for reuse."""

_BROKEN_FINISH = ("length", "content_filter")


def reuse_key(name: str, arguments: str) -> ReuseKey:
    """The key under which a call's result may be reused (`arguments` is valid JSON)."""
    try:
        canonical = json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = arguments
    return name, canonical


class EarlyStarts:
    """The calls of one attempt at a step that started while its response streamed."""

    __slots__ = ("_config", "_context", "_ids", "_keys", "_reusable", "_state", "_step",
                 "_timeout", "calls", "runner")  # fmt: skip

    def __init__(
        self,
        config: RunConfig,
        state: RunState,
        step: int,
        runner: ToolRunner,
        timeout: float | None,
        reusable: dict[ReuseKey, ToolRun],
    ) -> None:
        self._config = config
        self._state = state
        self._step = step
        self.runner = runner
        self._timeout = timeout
        self._reusable = reusable
        # Early calls see the conversation before this step: its assistant message is
        # still streaming (`ToolContext.early` tells them so).
        self._context: tuple[Mapping[str, Any], ...] = tuple(state.messages)
        self.calls: dict[int, ToolRun] = {}
        """The calls started early, by index."""
        self._ids: dict[int, tuple[str, bool]] = {}
        self._keys: dict[int, ReuseKey] = {}

    # --- while the response streams -----------------------------------------------------

    def after_chunk(self, assembler: StreamAssembler | ResponsesAssembler) -> list[Event]:
        """Start the calls that became final with the last chunk; the events to relay."""
        events: list[Event] = []
        settled = assembler.settled()
        if (
            settled
            and self._state.final_only is None
            and not assembler.errors
            and assembler.finish_reason not in _BROKEN_FINISH
        ):
            for call in settled:
                self._consider(call, events)
        if self.calls:
            events += self.runner.ready()
        return events

    def _consider(self, call: AssembledToolCall, events: list[Event]) -> None:
        config = self._config
        tool = config.tools.get(call.name or "")
        if tool is None or not tool.early or tool.needs_approval:
            return
        # The index bounds the runnable calls before this one: within the limits for
        # it, within them whatever the calls before turn out to be.
        if over_limit(config, call.index, self._state.calls_run):
            return
        ready, _ = validate_call(config, call)
        if ready is None:
            return
        # The id it will have in the conversation: a fresh one where the server's is
        # missing or already taken, as `with_fresh_ids` does for the whole message.
        call_id, generated = call.id, call.id_generated
        if call_id in self._state.used_ids or any(call_id == i for i, _ in self._ids.values()):
            call_id, generated = new_call_id(), True
        ready.id = call_id
        ready.early = True
        self._ids[call.index] = (call_id, generated)
        self._keys[call.index] = key = reuse_key(tool.name, call.arguments)
        _reuse(self._reusable.pop(key, None), ready)
        self.calls[call.index] = ready
        events.append(
            ToolCallReady(
                self._step, call.index, call_id, tool.name, ready.arguments, call.arguments
            )
        )
        self.runner.start(ready, self._context, self._timeout)

    # --- when the attempt ends ----------------------------------------------------------

    def abandon(self, reason: str) -> list[Event]:
        """The attempt broke: withdraw every early call; keep what may be reused."""
        events = self.runner.ready() if self.calls else []
        for index, call in self.calls.items():
            if call.finished and call.error is None and call.tool.idempotent:
                self._reusable[self._keys[index]] = call
            events.append(self._withdraw(call, reason))
        self.calls.clear()
        self.runner.close()
        return events

    def with_ids(self, message: AssembledMessage, used: set[str]) -> AssembledMessage:
        """`message` with unique call ids, the early calls keeping the ids they started with.

        Like `with_fresh_ids`: a call whose id the conversation (or an early call)
        already holds gets a new one; `used` gains the message's ids.
        """
        taken = {call_id for call_id, _ in self._ids.values()}
        calls = []
        for call in message.tool_calls:
            early = self._ids.get(call.index) if call.index in self.calls else None
            if early is not None:
                call = replace(call, id=early[0], id_generated=early[1])
            elif call.id in used or call.id in taken:
                call = replace(call, id=new_call_id(), id_generated=True)
            used.add(call.id)
            calls.append(call)
        return replace(message, tool_calls=tuple(calls))

    def claim(self, call: AssembledToolCall, ready: ToolRun) -> tuple[ToolRun, list[Event]]:
        """The run for a call of the whole response that will run, and events to relay.

        Its early run when it is the same call; else `ready`, holding a kept result
        when the same idempotent call finished in a broken attempt. An early run of a
        call that changed is withdrawn.
        """
        early = self.calls.pop(call.index, None)
        events = self.runner.ready() if early is not None else []
        if early is not None:
            if (early.tool, early.id, early.arguments) == (ready.tool, ready.id, ready.arguments):
                return early, events
            events.append(self._withdraw(early, "the whole response holds another call here"))
        _reuse(self._reusable.pop(reuse_key(ready.tool.name, call.arguments), None), ready)
        return ready, events

    def unclaimed(self, reason: str) -> list[Event]:
        """Withdraw the early calls the whole response did not keep."""
        events = self.runner.ready() if self.calls else []
        events += [self._withdraw(call, reason) for call in self.calls.values()]
        self.calls.clear()
        return events

    def _withdraw(self, call: ToolRun, reason: str) -> ToolCancelled:
        if call.scope is not None and not call.finished:
            call.scope.cancel()
        return ToolCancelled(self._step, call.index, call.id, call.tool.name, reason, call.finished)


def _reuse(kept: ToolRun | None, ready: ToolRun) -> None:
    """Give `ready` the result `kept` returned, so that it does not run again."""
    if kept is not None:
        ready.output, ready.value, ready.error = kept.output, kept.value, kept.error
        ready.duration, ready.truncated = kept.duration, kept.truncated
        ready.finished = ready.reused = True
