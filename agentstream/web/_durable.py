"""The app on durable runs: each chat's run is a workflow whose events live in a database.

`create_app(..., durable=runs)` takes any object with the methods of `DurableRuns`
(`agentstream.dbos.DurableAgent` has them; this package never imports it). The app then
keeps no run in memory: `POST /api/chat` starts the chat's run as a workflow and streams
it from its event log, and a reader that comes back, after a reload, a dropped
connection, or a server killed and started again (or another server on the same
database), reads the log from where it left off. The SSE `id:` of a frame is the
sequence number of the event it ends (`Last-Event-ID` resumes after it); a UI stream is
rebuilt by feeding the events before that point to a fresh encoder, so its parts and
ids are the same on every reader.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agentstream import (
    ApprovalRequested,
    Event,
    RunFailed,
    RunFinished,
    ToolCallApproved,
    ToolCallDenied,
)

from ._runs import safe_event_dict
from ._ui_stream import UI_STREAM_HEADERS, UIStreamEncoder, chunk_of

__all__ = ["DurableRuns", "DurableStream", "held_by", "holder_of"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_PAUSE = 0.5  # seconds without an event after approval requests: the run waits for them


class DurableRuns(Protocol):
    """What the app needs of a durable engine (`agentstream.dbos.DurableAgent` fits)."""

    async def start_chat(
        self, chat_id: str, messages: list[dict[str, Any]], holder: str | None, deps: Any = None, /
    ) -> str:
        """Start the chat's run on `messages`, kept with `holder`; the run's id.

        The same turn sent again finds its run rather than starting a second one.
        `deps` (plain data) goes with the run to whichever worker runs it.
        """
        ...

    async def chat_run(self, chat_id: str, /) -> tuple[str, str | None] | None:
        """The id of the chat's latest run and its holder, if it has one."""
        ...

    def events(self, run_id: str, *, after: int = -1) -> AsyncGenerator[tuple[int, Event], None]:
        """The run's `(seq, event)` pairs after seq `after`, to its end."""
        ...

    async def approve(
        self, run_id: str, call_id: str, approved: bool, reason: str | None, /
    ) -> None:
        """Decide call `call_id`, which run `run_id` waits for."""
        ...

    async def cancel(self, run_id: str, /) -> None:
        """Stop the run."""
        ...

    async def cancel_call(self, run_id: str, call_id: str, reason: str | None, /) -> None:
        """Cancel one tool call of the run, wherever it runs; the run goes on."""
        ...

    async def steer(self, run_id: str, text: str, /) -> str:
        """Send the run a user message for its next step; its id (`AgentStreamError`
        if the run has ended)."""
        ...

    async def events_until_now(self, run_id: str, /) -> list[tuple[int, Event]]:
        """The run's `(seq, event)` pairs written so far."""
        ...

    async def chat_messages(self, run_id: str, /) -> list[dict[str, Any]] | None:
        """The run's conversation with its wire fields (as finished, or as started)."""
        ...


def holder_of(secret: str | None) -> str | None:
    """What is kept of a client's chat secret: a digest, never the secret."""
    return None if not secret else hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def held_by(holder: str | None, secret: str | None) -> bool:
    """Whether a client with `secret` may act on a run kept with `holder` (any, if none)."""
    if holder is None:
        return True
    given = holder_of(secret)
    return given is not None and hmac.compare_digest(given, holder)


def message_id_of(run_id: str) -> str:
    """The UI message id of a run: the same on every server and every reader."""
    return "msg_" + hashlib.sha256(run_id.encode()).hexdigest()[:16]


class DurableStream(Response):
    """A durable run's frames after `after`, until it ends or the client goes.

    A UI stream also ends when the run waits for approvals (as a paused run's does,
    with `finish` for `tool-calls`); with `resume`, the ids of calls just decided, it
    streams what follows their requests, into the same message.
    """

    def __init__(
        self,
        runs: DurableRuns,
        run_id: str,
        kind: str,
        after: int,
        keep_alive: float,
        extra: dict[str, str] | None = None,
        resume: frozenset[str] = frozenset(),
    ) -> None:
        self.runs, self.run_id, self.kind = runs, run_id, kind
        self.after, self.keep_alive = after, keep_alive
        self.resume = resume
        self._waiting: set[str] = set()  # calls asked for approval and not decided yet
        self.status_code = 200
        self.background = None
        base = UI_STREAM_HEADERS if kind == "ui" else _SSE_HEADERS
        self.init_headers({**base, "content-type": "text/event-stream", **(extra or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async with anyio.create_task_group() as group:

            async def leave_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(leave_on_disconnect)
            async with aclosing(self._frames()) as frames:
                async for frame in frames:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            group.cancel_scope.cancel()

    async def _frames(self) -> AsyncGenerator[bytes, None]:
        """The SSE frames, with a keep-alive comment after `keep_alive` s without one."""
        send, receive = anyio.create_memory_object_stream[bytes | None](math.inf)

        async def produce() -> None:
            async with send, aclosing(self._payloads()) as payloads:
                async for payload in payloads:
                    await send.send(payload)

        async with anyio.create_task_group() as group, receive:
            group.start_soon(produce)
            while True:
                pausing = self.kind == "ui" and bool(self._waiting)
                with anyio.move_on_after(_PAUSE if pausing else self.keep_alive) as waited:
                    try:
                        frame = await receive.receive()
                    except anyio.EndOfStream:
                        return
                    if frame is not None:
                        yield frame
                if waited.cancelled_caught and pausing and self._waiting:
                    # The run waits for a person: the page shows the requests and
                    # sends the decisions as a new request, which streams the rest.
                    paused = {"type": "finish", "finishReason": "tool-calls"}
                    yield _frame(chunk_of(paused), None) + b"data: [DONE]\n\n"
                    group.cancel_scope.cancel()
                    return
                if waited.cancelled_caught:
                    yield b": keep-alive\n\n"

    async def _payloads(self) -> AsyncGenerator[bytes, None]:
        encoder = UIStreamEncoder(message_id_of(self.run_id)) if self.kind == "ui" else None
        started = time.perf_counter()
        # A UI stream reads from the start: its encoder needs every event.
        after = -1 if encoder is not None else self.after
        hidden = set(self.resume) if encoder is not None else set()
        ended = False  # with its own event: a stopped run has none
        async with aclosing(self.runs.events(self.run_id, after=after)) as events:
            async for seq, event in events:
                ended = isinstance(event, (RunFinished, RunFailed))
                if encoder is None:
                    if seq > self.after:
                        yield _frame(chunk_of(safe_event_dict(event)), seq)
                    continue
                chunks = encoder.feed(event, time.perf_counter() - started)
                self._track(event)
                if hidden:  # before the requests just decided: the client has it all
                    if isinstance(event, ApprovalRequested):
                        hidden.discard(event.id)
                    if not hidden:
                        start = {"type": "start", "messageId": encoder.message_id}
                        yield _frame(chunk_of(start), seq)
                    continue
                if seq <= self.after:
                    continue
                for n, chunk in enumerate(chunks):
                    # Only an event's last part carries its seq: a client cut inside
                    # an event gets that whole event again.
                    yield _frame(chunk_of(chunk), seq if n == len(chunks) - 1 else None)
        if encoder is None and not ended:  # stopped: as a stopped live run's events end
            yield _frame(chunk_of({"type": "run_stopped", "reason": "stopped"}), None)
        if encoder is not None and not encoder.finished:  # cancelled: no RunFinished came
            now = time.perf_counter() - started
            for chunk in encoder.stopped("stopped", now):
                yield _frame(chunk_of(chunk), None)
        if encoder is not None:
            yield b"data: [DONE]\n\n"

    def _track(self, event: Event) -> None:
        """Keep the set of calls waiting for a decision up to date."""
        if isinstance(event, ApprovalRequested) and event.id not in self.resume:
            self._waiting.add(event.id)  # (one just decided is not waited for)
        elif isinstance(event, (ToolCallApproved, ToolCallDenied)):
            self._waiting.discard(event.id)


def _frame(data: str, seq: int | None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}data: {data}\n\n".encode()
