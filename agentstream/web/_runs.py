"""Runs kept by the app with their event buffers, so that a client can reattach.

A `LiveRun` is driven by the request that started it (no lifespan is needed, so the app
also works mounted in FastAPI, where a sub-application's lifespan never runs): the
request's task group reads the agent's events into the run's buffers, as UI message
stream parts and as agentstream's JSON events, each numbered. Any number of readers
follow the buffers from a given number on. When the last reader has gone and none comes
back within `reattach_grace` seconds, the run is cancelled (its HTTP stream closed, its
tools cancelled). The `RunRegistry` holds at most `max_runs` runs; a finished one is
forgotten `keep_finished` seconds after it ended.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from agentstream import AgentRun, Event, RunError, RunFinished, event_to_dict

from ._messages import wire_messages
from ._ui_stream import UIStreamEncoder, chunk_of, error_text

__all__ = ["LiveRun", "RegistryFull", "RunRegistry", "safe_event_dict"]

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


@dataclass(frozen=True, slots=True)
class Frame:
    """One numbered item of a buffer: an SSE `data:` payload."""

    number: int
    data: str


class LiveRun:
    """One run, its two buffers, and the readers following them."""

    def __init__(self, key: str, grace: float) -> None:
        self.key = key
        self.ui: list[str] = []
        self.events: list[str] = []
        self.finished_at: float | None = None
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

    @property
    def finished(self) -> bool:
        """Whether both buffers are complete."""
        return self.finished_at is not None

    def stop(self, reason: str = "stopped") -> None:
        """Cancel the run (its model stream and its tools)."""
        if not self.finished and not self.stop_reason:
            self.stop_reason = reason
        self._cancel.cancel()

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
        self.ui.append(DONE)
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
        self, buffer: Callable[[], list[str]], after: int, keep_alive: float
    ) -> AsyncGenerator[Frame | None, None]:
        """The frames numbered above `after`, then those to come; None is a keep-alive."""
        self.readers += 1
        self._left_at = None
        try:
            position = max(after + 1, 0)
            while True:
                items = buffer()
                while position < len(items):
                    yield Frame(position, items[position])
                    position += 1
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
        self.ui.extend(chunk_of(chunk) for chunk in chunks)
        if event is not None:
            self.events.append(chunk_of(event))
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


class RunRegistry:
    """The app's runs by key (the chat id), bounded in number and in time."""

    def __init__(
        self, *, max_runs: int = 100, keep_finished: float = 300.0, reattach_grace: float = 10.0
    ) -> None:
        self.max_runs = max_runs
        self.keep_finished = keep_finished
        self.reattach_grace = reattach_grace
        self._runs: dict[str, LiveRun] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, key: str) -> LiveRun | None:
        """The run under `key`, if it is still kept."""
        self._expire()
        return self._runs.get(key)

    def add(self, key: str | None) -> LiveRun:
        """A new run under `key` (a fresh key if None), replacing and stopping an older one.

        Raises `RegistryFull` when `max_runs` runs are kept and none can be forgotten.
        """
        self._expire()
        key = key or "run_" + secrets.token_hex(8)
        old = self._runs.pop(key, None)
        if old is not None:
            old.stop("replaced")
        if len(self._runs) >= self.max_runs:
            done = [run for run in self._runs.values() if run.finished]
            if not done:
                raise RegistryFull(f"{self.max_runs} runs are in progress; try again later")
            oldest = min(done, key=lambda run: run.finished_at or 0.0)
            del self._runs[oldest.key]
        live = LiveRun(key, self.reattach_grace)
        self._runs[key] = live
        return live

    def _expire(self) -> None:
        now = time.monotonic()
        for key, run in list(self._runs.items()):
            if run.finished_at is not None and now - run.finished_at > self.keep_finished:
                del self._runs[key]
