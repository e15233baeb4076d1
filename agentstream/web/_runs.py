"""Runs kept by the app with their event buffers, so that a client can reattach.

A `LiveRun` is driven by the request that started it (no lifespan is needed, so the app
also works mounted in FastAPI, where a sub-application's lifespan never runs): the
request's task group reads the agent's events into the run's buffers, as UI message
stream parts and as agentstream's JSON events, each numbered. Any number of readers
follow the buffers from a given number on. When the last reader has gone and none comes
back within `reattach_grace` seconds, the run is cancelled (its HTTP stream closed, its
tools cancelled). The buffers are `Replay`s, compacted as the run goes (see `_replay`).

The `RunRegistry` holds at most `max_runs` runs, of which at most `max_finished` have
finished; a finished one is forgotten `keep_finished` seconds after it ended, and
`purge()` forgets them at once. A run started with a holder secret (the client's
`x-agentstream-chat-secret`) can be replaced, stopped or read again only with it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from agentstream import AgentRun, CallNotRunning, Event, RunError, RunFinished, event_to_dict

from ._messages import wire_messages
from ._replay import Replay
from ._ui_stream import UIStreamEncoder, chunk_of, error_text

__all__ = ["LiveRun", "NotHolder", "RegistryFull", "RunRegistry", "RunSummary", "safe_event_dict"]

logger = logging.getLogger("agentstream.web")

DONE = "[DONE]"


def safe_event_dict(event: Event) -> dict[str, Any]:
    """`event_to_dict` without tracebacks: an error is its type and message only."""
    data = event_to_dict(event)
    error = getattr(event, "error", None)
    if isinstance(error, BaseException):
        data["error"] = {"type": type(error).__name__, "message": str(error)}
    return data


class RegistryFull(Exception):
    """The registry holds `max_runs` runs that have not finished."""


class NotHolder(Exception):
    """The run is held by another client (it was started with another chat secret)."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the registry keeps of one run, for listing."""

    key: str
    finished: bool
    frames: int
    """How many frames have been numbered so far (UI stream and events)."""
    age: float
    """Seconds since it finished, or since it started if it has not."""


def _digest(secret: str | None) -> bytes | None:
    return None if not secret else hashlib.sha256(secret.encode("utf-8", "replace")).digest()


@dataclass(frozen=True, slots=True)
class Frame:
    """One numbered item of a buffer: an SSE `data:` payload."""

    number: int
    data: str


class LiveRun:
    """One run, its two buffers, and the readers following them."""

    def __init__(self, key: str, grace: float, secret: str | None = None) -> None:
        self.key = key
        self.ui = Replay()
        self.events = Replay()
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self._holder = _digest(secret)
        self.readers = 0
        self._grace = grace
        self._changed = anyio.Event()
        self._cancel = anyio.CancelScope()
        self._left_at: float | None = None  # when the last reader left, if one did
        self.stop_reason = ""
        self.paused: str | None = None
        self.wire: list[dict[str, Any]] = []
        """The assistant messages that hold what the page cannot send back (`wire_messages`)."""
        self.message_id: str | None = None
        """The run's state as JSON when it ended waiting for approvals, else None."""
        self.run: AgentRun | None = None
        """The run being driven, for `AgentRun.send` and `AgentRun.cancel_call`."""
        self._encoder: UIStreamEncoder | None = None

    def held_by(self, secret: str | None) -> bool:
        """Whether a client with `secret` may act on this run (any, if it has no holder)."""
        if self._holder is None:
            return True
        given = _digest(secret)
        return given is not None and secrets.compare_digest(given, self._holder)

    @property
    def finished(self) -> bool:
        """Whether both buffers are complete."""
        return self.finished_at is not None

    def stop(self, reason: str = "stopped") -> None:
        """Cancel the run (its model stream and its tools)."""
        if not self.finished and not self.stop_reason:
            self.stop_reason = reason
        self._cancel.cancel()

    def cancel_call(self, call_id: str, reason: str | None) -> None:
        """Cancel one tool call of the run (by its UI or its run id); `CallNotRunning`
        if the run has ended or holds no such call running or waiting."""
        run, encoder = self.run, self._encoder
        if run is None or encoder is None or self.finished:
            raise CallNotRunning("the run has ended")
        run.cancel_call(encoder.call_ids.get(call_id, call_id), reason)

    async def drive(
        self,
        run: AgentRun,
        message_id: str | None = None,
        on_paused: Callable[[LiveRun], Awaitable[None]] | None = None,
    ) -> None:
        """Read `run` to its end (or until stopped) into the buffers; never raises.

        `message_id` is the UI message the parts go into (a continuation after approvals
        streams into the assistant message it continues); a fresh one if None. When the
        run pauses for approval, `on_paused` is awaited before the buffers end.
        """
        encoder = UIStreamEncoder(message_id or "msg_" + secrets.token_hex(8))
        self.message_id = encoder.message_id
        self.run, self._encoder = run, encoder
        started = time.perf_counter()
        with self._cancel:
            try:
                async with run:
                    async for event in run:
                        now = time.perf_counter() - started
                        self._keep_if_paused(event)
                        self._push(encoder.feed(event, now), safe_event_dict(event))
            except RunError as exc:
                # The readers have had the `error` part and the `run_failed` event.
                logger.info("run %s failed: %s", self.key, error_text(exc))
            except Exception as exc:
                logger.exception("run %s failed unexpectedly", self.key)
                failure: dict[str, object] = {"type": "error", "errorText": error_text(exc)}
                self._push([failure, {"type": "finish", "finishReason": "error"}], None)
        if not encoder.finished:
            reason = self.stop_reason or "stopped"
            now = time.perf_counter() - started
            self._push(encoder.stopped(reason, now), {"type": "run_stopped", "reason": reason})
        if on_paused is not None and (self.paused is not None or self.wire):
            try:
                await on_paused(self)
            except Exception:  # the registry still has it while the run is kept
                logger.exception("run %s: could not save its paused state", self.key)
        self.ui.settle_all()
        self.events.settle_all()
        self.ui.add(DONE)
        self.finished_at = time.monotonic()
        self._notify()

    def _keep_if_paused(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.wire = wire_messages(event.result.messages)
        if isinstance(event, RunFinished) and event.result.stop_reason == "approval_required":
            state = event.result.state
            self.paused = state.to_json() if state is not None else None

    async def watch_readers(self) -> None:
        """Stop the run once it has had no reader for the grace period."""
        while not self.finished:
            left = self._left_at
            if self.readers == 0 and left is not None and time.monotonic() - left >= self._grace:
                self.stop("disconnected")
                return
            await anyio.sleep(min(self._grace, 0.5) or 0.05)

    async def follow(
        self, buffer: Replay, after: int, keep_alive: float
    ) -> AsyncGenerator[Frame | None, None]:
        """The frames numbered above `after`, then those to come; None is a keep-alive."""
        self.readers += 1
        self._left_at = None
        try:
            sent = after
            while True:
                for number, data in buffer.read(sent):
                    yield Frame(number, data)
                    sent = number
                if self.finished:
                    return
                changed = self._changed
                with anyio.move_on_after(keep_alive) as scope:
                    await changed.wait()
                if scope.cancelled_caught:
                    yield None
        finally:
            self.readers -= 1
            if self.readers == 0:
                self._left_at = time.monotonic()

    def _push(self, chunks: Sequence[Mapping[str, Any]], event: Mapping[str, Any] | None) -> None:
        for chunk in chunks:
            _keep_ui(self.ui, chunk)
        if event is not None:
            _keep_event(self.events, event)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


_UI_PIECES = {"text-delta": "delta", "reasoning-delta": "delta"}
_UI_ENDS = {"text-end", "reasoning-end"}
_INNER_TEXT = ("data", "event", "text")
_EVENT_PIECES = {"text_delta": "text", "reasoning_delta": "text", "refusal_delta": "text"}
_STEP_ENDS = {"step_finished", "step_interrupted", "run_finished", "run_failed", "run_stopped"}


def _keep_ui(replay: Replay, chunk: Mapping[str, Any]) -> None:
    """Keep one UI part: pieces joined once settled, a tool's progress only the latest."""
    kind = chunk.get("type")
    if kind in _UI_PIECES:
        replay.add_piece(f"{chunk.get('id')}", chunk, _UI_PIECES[kind])
    elif kind == "tool-input-delta":
        replay.add_piece(f"call:{chunk.get('toolCallId')}", chunk, "inputTextDelta")
    elif kind == "data-agentstream" and chunk["data"].get("kind") == "tool_progress":
        replay.add(chunk_of(chunk), coalesce=f"progress:{chunk['data'].get('toolCallId')}")
    elif kind == "data-agentstream" and "part" in chunk["data"]:  # an agent's inner text
        replay.add_piece(f"sub:{chunk['data']['part']}", chunk, _INNER_TEXT)
    else:
        replay.add(chunk_of(chunk))
        if kind in _UI_ENDS:
            replay.settle(f"{chunk.get('id')}")
        elif kind in ("tool-input-available", "tool-input-error"):
            replay.settle(f"call:{chunk.get('toolCallId')}")
        elif kind in ("reset-step", "finish-step", "finish", "abort"):
            replay.settle_all()
        elif kind == "data-subrun":  # a stretch of inner text whole: its pieces joined
            replay.settle(f"sub:{chunk.get('id')}")


def _keep_event(replay: Replay, event: Mapping[str, Any]) -> None:
    """Keep one JSON event: deltas joined once their step ends, progress only the latest."""
    kind = event.get("type")
    if kind in _EVENT_PIECES:
        part = f"{kind}:{event.get('step')}:{event.get('choice')}"
        replay.add_piece(part, event, _EVENT_PIECES[kind])
    elif kind == "tool_call_delta":
        replay.add_piece(f"call:{event.get('step')}:{event.get('index')}", event, "delta")
    elif kind == "sub_run_event" and event["event"].get("type") in _EVENT_PIECES:
        inner = event["event"]  # an agent tool's inner text: joined as the outer step ends
        part = f"sub:{'/'.join(event['call_ids'])}:{inner['type']}:{inner.get('step')}"
        replay.add_piece(part, event, ("event", "text"))
    elif kind == "tool_progress":
        replay.add(chunk_of(event), coalesce=f"progress:{event.get('id')}")
    else:
        replay.add(chunk_of(event))
        if kind in _STEP_ENDS:
            replay.settle_all()


class RunRegistry:
    """The app's runs by key (the chat id), bounded in number and in time.

    At most `max_runs` runs; of the finished ones, at most `max_finished`, each for
    `keep_finished` seconds after it ended (a laptop's defaults: a reload can reattach).
    """

    def __init__(
        self,
        *,
        max_runs: int = 100,
        keep_finished: float = 120.0,
        max_finished: int = 20,
        reattach_grace: float = 10.0,
    ) -> None:
        self.max_runs = max_runs
        self.keep_finished = keep_finished
        self.max_finished = max_finished
        self.reattach_grace = reattach_grace
        self._runs: dict[str, LiveRun] = {}

    def runs(self) -> list[RunSummary]:
        """The runs kept now, oldest first."""
        self._expire()
        now = time.monotonic()
        return [
            RunSummary(
                run.key, run.finished, len(run.ui) + len(run.events),
                now - (run.finished_at if run.finished_at is not None else run.started_at),
            )
            for run in self._runs.values()
        ]  # fmt: skip

    def purge(self, *, older_than: float = 0.0) -> int:
        """Forget the finished runs that ended `older_than` seconds ago or more; how many."""
        now = time.monotonic()
        gone = [
            key
            for key, run in self._runs.items()
            if run.finished_at is not None and now - run.finished_at >= older_than
        ]
        for key in gone:
            del self._runs[key]
        return len(gone)

    def discard(self, live: LiveRun) -> None:
        """Forget `live` if it is still the run under its key (its response never began)."""
        if self._runs.get(live.key) is live:
            del self._runs[live.key]

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, key: str) -> LiveRun | None:
        """The run under `key`, if it is still kept."""
        self._expire()
        return self._runs.get(key)

    def add(self, key: str | None, secret: str | None = None) -> LiveRun:
        """A new run under `key` (a fresh key if None), replacing and stopping an older one.

        `secret` is the client's holder secret: the new run is held with it, and an older
        run held with another one is not replaced (`NotHolder`). Raises `RegistryFull`
        when `max_runs` runs are kept and none can be forgotten.
        """
        self._expire()
        key = key or "run_" + secrets.token_hex(8)
        old = self._runs.get(key)
        if old is not None and not old.held_by(secret):
            raise NotHolder("this chat's run was started by another client")
        if old is not None:
            del self._runs[key]
            old.stop("replaced")
        if len(self._runs) >= self.max_runs:
            done = [run for run in self._runs.values() if run.finished]
            if not done:
                raise RegistryFull(f"{self.max_runs} runs are in progress; try again later")
            oldest = min(done, key=lambda run: run.finished_at or 0.0)
            del self._runs[oldest.key]
        live = LiveRun(key, self.reattach_grace, secret)
        self._runs[key] = live
        return live

    def _expire(self) -> None:
        now = time.monotonic()
        finished = []
        for key, run in list(self._runs.items()):
            if run.finished_at is None:
                continue
            if now - run.finished_at > self.keep_finished:
                del self._runs[key]
            else:
                finished.append(run)
        finished.sort(key=lambda run: run.finished_at or 0.0)
        for run in finished[: max(len(finished) - self.max_finished, 0)]:
            del self._runs[run.key]
