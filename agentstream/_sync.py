"""`SyncRun`: a run's events for synchronous code (Flask, Django), from a worker thread.

The run itself is async: it goes on in a blocking portal (a thread with its own event
loop), in one task from start to end, and hands its events over a zero-buffer memory
stream, so it advances only as fast as the caller reads. Closing early cancels that task,
which closes the model's stream and cancels the tools still running.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._events import Event
from ._result import RunResult

if TYPE_CHECKING:
    from ._agent import Agent
    from ._settings import Prompt

__all__ = ["SyncRun"]


class SyncRun:
    """A run's events, iterated from synchronous code; use it in a `with` block.

    `for event in run:` yields the events as they come; leaving the block (or `close()`)
    before the end stops the run. A failed run raises its error from the loop, after the
    `RunFailed` event, as `Agent.run` would.
    """

    def __init__(
        self, agent: Agent[Any], prompt: Prompt, request: Mapping[str, Any], backend: str
    ) -> None:
        self._agent = agent
        self._prompt = prompt
        self._request = dict(request)
        self._backend = backend
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._receive: MemoryObjectReceiveStream[Event] | None = None
        self._task: Future[None] | None = None
        self._result: RunResult | None = None
        self._closed = False

    @property
    def result(self) -> RunResult:
        """The result; raises `RuntimeError` until the run has finished."""
        if self._result is None:
            raise RuntimeError("the run has not finished")
        return self._result

    def __enter__(self) -> SyncRun:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        portal, receive = self._start()
        try:
            event: Event = portal.call(receive.receive)
            return event
        except anyio.EndOfStream:
            task = self._task
            # The stream ends as the run's task does: wait for it, for its error.
            error = task.exception() if task is not None and not task.cancelled() else None
            self.close()
            if error is not None:
                raise error from None
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the run if it is still going, and end the worker thread."""
        if self._closed:
            return
        self._closed = True
        task, portal_cm = self._task, self._portal_cm
        self._task = self._portal = self._portal_cm = None
        if task is not None and not task.done():
            task.cancel()
        if portal_cm is not None:
            portal_cm.__exit__(None, None, None)
        if self._receive is not None:
            self._receive.close()  # the portal's loop has ended: nothing else uses it

    def _start(self) -> tuple[BlockingPortal, MemoryObjectReceiveStream[Event]]:
        if self._closed:
            raise RuntimeError("the run is closed")
        if self._portal is None or self._receive is None:
            self._portal_cm = start_blocking_portal(self._backend)
            self._portal = self._portal_cm.__enter__()
            send, self._receive = anyio.create_memory_object_stream[Event](0)
            self._task = self._portal.start_task_soon(self._produce, send)
        return self._portal, self._receive

    async def _produce(self, send: MemoryObjectSendStream[Event]) -> None:
        async with send:
            async with self._agent.stream(self._prompt, **self._request) as run:
                async for event in run:
                    await send.send(event)
            self._result = run.result
