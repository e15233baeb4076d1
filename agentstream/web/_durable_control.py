"""What a durable chat has that a live one has: cancelling a call, steering, the wire.

The endpoints of `_app` hand durable chats here. Each acts on the chat's latest run
through the durable engine, whichever server runs it: `cancel_call` and `steer` reach
that run through its database (see `agentstream.dbos`), and a new turn gets back the
fields the page cannot hold (reasoning, signatures) from the chat's previous run, as a
live chat gets them from its checkpoints.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from agentstream import (
    AgentStreamError,
    Event,
    ToolCallDenied,
    ToolCallReady,
    ToolCancelled,
    ToolFinished,
    ToolQueued,
    ToolStarted,
)

from ._durable import DurableRuns
from ._messages import restore_wire, wire_messages
from ._ui_stream import UIStreamEncoder

__all__ = ["durable_cancel_call", "durable_steer", "durable_wire"]

_MAX_CALL_ID = 256
_MAX_REASON = 1000
_KNOWN = (ToolCallReady, ToolQueued, ToolStarted)
_OVER = (ToolFinished, ToolCancelled, ToolCallDenied)

Held = Callable[[str], Awaitable[str | None]]
"""The run of a chat key, checking the client holds it (`NotHolder` if not)."""


def _error(status: int, text: str) -> Response:
    return JSONResponse({"error": text}, status_code=status)


async def durable_cancel_call(
    durable: DurableRuns, held: Held, key: str, body: dict[str, Any]
) -> Response:
    """`POST .../cancel` for a durable run: 204, or 409 if no such call is running."""
    call_id, reason = body.get("toolCallId"), body.get("reason")
    if not isinstance(call_id, str) or not 0 < len(call_id) <= _MAX_CALL_ID:
        return _error(400, f"toolCallId must be a string of 1 to {_MAX_CALL_ID} characters")
    if reason is not None and (not isinstance(reason, str) or len(reason) > _MAX_REASON):
        return _error(400, f"reason must be null or at most {_MAX_REASON} characters")
    run_id = await held(key)
    if run_id is None:
        return _error(404, "no such run")
    found = _running_call(await durable.events_until_now(run_id), call_id)
    if found is None:
        return _error(409, "no such tool call is running")
    await durable.cancel_call(run_id, found, reason or None)
    return Response(status_code=204)


def _running_call(events: list[tuple[int, Event]], ui_id: str) -> str | None:
    """The run's id of the call the page names `ui_id`, if it is running or to run."""
    encoder = UIStreamEncoder("msg")  # the page's call ids, as every reader makes them
    known: set[str] = set()
    for _, event in events:
        encoder.feed(event, 0.0)
        if isinstance(event, _KNOWN):
            known.add(event.id)
        elif isinstance(event, _OVER):
            known.discard(event.id)
    call = encoder.call_ids.get(ui_id, ui_id)
    return call if call in known else None


async def durable_steer(durable: DurableRuns, held: Held, key: str, text: object) -> Response:
    """`POST .../steer` for a durable run: the message's id, or 409 if the run has ended."""
    if not isinstance(text, str) or not text.strip():
        return _error(400, "send the message as {'text': '...'}")
    run_id = await held(key)
    if run_id is None:
        return _error(404, "no such run")
    try:
        message_id = await durable.steer(run_id, text)
    except AgentStreamError:
        return _error(409, "this run is not in progress: send a new message instead")
    return JSONResponse({"id": message_id})


async def durable_wire(
    durable: DurableRuns, chat_id: str | None, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`messages` with the wire fields of the chat's previous run put back."""
    found = await durable.chat_run(chat_id) if chat_id is not None else None
    if found is None:
        return messages
    kept = await durable.chat_messages(found[0])
    return restore_wire(messages, wire_messages(kept)) if kept else messages
