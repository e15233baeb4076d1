"""`SyncRun`: a run's events for synchronous code (Flask, Django), from a worker thread;
`LoopThread`: the one event loop of an agent's sync runs with a client instance.

The run itself is async: it goes on in a blocking portal (a thread with its own event
loop), in one task from start to end, and hands its events over a zero-buffer memory
stream, so it advances only as fast as the caller reads. Closing early cancels that task,
which closes the model's stream and cancels the tools still running.

Why one long-lived loop for a client instance: an `AsyncOpenAI`'s connections belong to
the loop that opened them, and a copy of the client made for each call would share them
(`copy()` keeps the HTTP client) or lose what the user built into it (a custom
`http_client`: a transport, proxies, certificates), which no public setting describes.
Keeping the loop alive keeps the instance usable as given, and its connections reused.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import openai
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._events import Event
from .._exceptions import SetupError
from .._result import RunResult

if TYPE_CHECKING:
    from ._run import AgentRun

__all__ = ["LoopThread", "SyncHome", "SyncRun", "refuse_in_event_loop"]

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, started at first use, kept for the process.

    A daemon thread: an agent kept in a module global must not hold the interpreter at
    exit, and an idle loop has nothing to finish.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._portal: BlockingPortal | None = None
        self._lock = threading.Lock()

    def portal(self) -> BlockingPortal:
        """The loop's portal, starting the thread the first time."""
        with self._lock:
            if self._portal is None:
                ready: Future[BlockingPortal] = Future()
                thread = threading.Thread(
                    target=self._serve, args=(ready,), name="agentstream-sync", daemon=True
                )
                thread.start()
                self._portal = ready.result()
            return self._portal

    def _serve(self, ready: Future[BlockingPortal]) -> None:
        async def serve() -> None:
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        try:
            anyio.run(serve, backend=self.backend)
        except BaseException as exc:  # the loop could not start: say why to the caller
            if not ready.done():
                ready.set_exception(exc)

    def call(self, func: Callable[[], Awaitable[T]]) -> T:
        """Run `func()` on the loop and return its result; Ctrl-C here cancels it."""
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await func()
            finally:
                finished.set()

        future = self.portal().start_task_soon(guarded)
        try:
            return future.result()
        except BaseException:
            if not future.done():  # interrupted while waiting: stop the run, let it close
                future.cancel()
                finished.wait()
            raise


class SyncRun:
    """A run's events, iterated from synchronous code; use it in a `with` block.

    `for event in run:` yields the events as they come; leaving the block (or `close()`)
    before the end stops the run. A failed run raises its error from the loop, after the
    `RunFailed` event, as `Agent.run` would.
    """

    def __init__(
        self,
        open_run: Callable[[], AgentRun[Any]],
        backend: str,
        portal: BlockingPortal | None = None,
    ) -> None:
        self._shared_portal = portal  # the agent's loop (a client instance), not ours to end
        self._open_run = open_run  # called in the loop's thread: the run belongs there
        self._backend = backend
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._receive: MemoryObjectReceiveStream[Event] | None = None
        self._task: Future[None] | None = None
        self._result: RunResult | None = None
        self._closed = False
        self._run: AgentRun[Any] | None = None  # the run in the loop's thread, once open

    @property
    def result(self) -> RunResult:
        """The result; raises `RuntimeError` until the run has finished."""
        if self._result is None:
            raise RuntimeError("the run has not finished")
        return self._result

    def send(self, text: str) -> str:
        """Send the run a user message (see `AgentRun.send`); returns its id."""
        run, portal = self._run, self._portal
        if run is None or portal is None or self._closed:
            raise SetupError("send() needs the run under way: call it while iterating its events")
        message_id: str = portal.call(run.send, text)  # in the run's own thread
        return message_id

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
        task, portal_cm, portal = self._task, self._portal_cm, self._portal
        self._task = self._portal = self._portal_cm = None
        if task is not None and not task.done():
            task.cancel()
        if portal_cm is not None:
            portal_cm.__exit__(None, None, None)
        if self._receive is None:
            return
        if portal is not None and portal is self._shared_portal:
            portal.call(self._receive.aclose)  # the loop goes on: close it there
        else:
            self._receive.close()  # the portal's loop has ended: nothing else uses it

    def _start(self) -> tuple[BlockingPortal, MemoryObjectReceiveStream[Event]]:
        if self._closed:
            raise RuntimeError("the run is closed")
        if self._portal is None or self._receive is None:
            if self._shared_portal is not None:
                self._portal = self._shared_portal
            else:
                self._portal_cm = start_blocking_portal(self._backend)
                self._portal = self._portal_cm.__enter__()
            send, self._receive = anyio.create_memory_object_stream[Event](0)
            self._task = self._portal.start_task_soon(self._produce, send)
        return self._portal, self._receive

    async def _produce(self, send: MemoryObjectSendStream[Event]) -> None:
        async with send:
            async with self._open_run() as run:
                self._run = run
                async for event in run:
                    await send.send(event)
            self._result = run.result


class SyncHome:
    """Where an agent's sync runs happen: with a client instance, one event loop kept in a
    daemon thread (made at first use), since the instance's connections belong to the
    loop that opened them; with a client factory, a loop of its own for each run."""

    __slots__ = ("_client", "_lock", "_loop")

    def __init__(self, client: object) -> None:
        self._client = client
        self._loop: LoopThread | None = None
        self._lock = threading.Lock()  # two threads' first run_sync make one loop

    def portal(self, backend: str) -> BlockingPortal | None:
        """The shared loop's portal for a client instance; None for a client factory."""
        return self._home(backend).portal() if self._shared else None

    def call(self, func: Callable[[], Awaitable[T]], backend: str) -> T:
        """`func()` to its end, on the shared loop or on a loop of its own."""
        if self._shared:
            return self._home(backend).call(func)
        return anyio.run(func, backend=backend)

    def close(self) -> None:
        """Close the client instance's connections kept open on the shared loop."""
        if self._loop is not None and isinstance(self._client, openai.AsyncOpenAI):
            self._loop.call(self._client.close)

    @property
    def _shared(self) -> bool:
        return isinstance(self._client, openai.AsyncOpenAI)

    def _home(self, backend: str) -> LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread(backend)
        if self._loop.backend != backend:
            raise SetupError(
                f"this agent's sync runs use the {self._loop.backend} loop its client "
                f"instance is bound to, not {backend}: give a client factory to mix them"
            )
        return self._loop


def refuse_in_event_loop() -> None:
    """`SetupError` when called inside a running event loop (a notebook, an async function)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            anyio.get_current_task()
        except Exception:  # anyio.NoEventLoopError: no loop here, as it should be
            return
    raise SetupError(
        "run_sync() cannot run inside a running event loop (a notebook, an async "
        "function): use `await agent.run(...)` there"
    )
