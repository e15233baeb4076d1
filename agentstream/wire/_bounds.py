"""The time limits of one streamed response, kept at (nearly) no cost per chunk.

A limit on a wait needs something that can end the wait: a cancel scope around it. One
scope per wait for a chunk costs some 35 Python calls on asyncio and 55 on trio, more
than merging the chunk; one scope spanning the stream is not allowed (the stream hands
each chunk to the caller's code, which would run inside it). But the HTTP client
already keeps a timer around each read of the socket: its read timeout, which every
httpx transport honours. When that timer is exactly the bound a read needs, nothing
more is spent on it; a read that needs another bound gets a scope of its own.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable
from time import perf_counter
from typing import Any, TypeVar

import anyio
import httpx2

from .._exceptions import RunTimeout

__all__ = ["StreamBounds"]

T = TypeVar("T")


class StreamBounds:
    """How long each wait of one stream may take; `ModelStream` keeps them.

    `first`: seconds from sending to the first chunk; `idle`: between two chunks (None:
    no limit); `fixed`: when the stream must have ended (a `perf_counter()` time, `inf`
    for none), the nearest of the step's and the run's ends, named `fixed_limit` with
    `fixed_seconds`. The request goes out with `idle` as its HTTP read timeout when that
    can never end a wait too early: when `first` is set and at most `idle` (the wait for
    the first chunk is allowed no longer than a gap) and the caller's own read timeout is
    not shorter. Then a read that starts a wait for a chunk (the last one brought some)
    and ends before `fixed - idle` is bounded by that timer alone (`free_until`; with
    `first` alone, every read after the first chunk is free); every other wait (the
    first one, the sending included; a read after one that brought no whole chunk; the
    last `idle` seconds before `fixed`) gets a cancel scope.
    """

    __slots__ = (
        "_shift",
        "fixed",
        "fixed_limit",
        "fixed_seconds",
        "free_until",
        "fresh",
        "gap",
        "gap_limit",
        "idle",
        "read_timeout",
        "since",
    )

    def __init__(
        self,
        first: float | None,
        idle: float | None,
        fixed: float = math.inf,
        fixed_limit: str = "",
        fixed_seconds: float = 0.0,
    ) -> None:
        self.idle = idle
        self.fixed, self.fixed_limit, self.fixed_seconds = fixed, fixed_limit, fixed_seconds
        self.gap, self.gap_limit = first, "first_chunk"
        self.read_timeout = idle if idle and first and first <= idle else None
        self.free_until = -math.inf
        if self.read_timeout is not None:
            self.free_until = fixed - self.read_timeout
        elif not idle and fixed == math.inf:
            self.free_until = math.inf  # `first_chunk` alone: nothing bounds the later reads
        self.fresh = False  # whether the next read starts a new wait for a chunk
        self.since = perf_counter()  # when the current wait began
        self._shift = 0.0  # from `perf_counter()` to the event loop's clock

    def request_timeout(self, given: Any) -> httpx2.Timeout | None:
        """The timeout to send the request with: `given` (the request's or the client's)
        with `idle` as its read timeout, or None to keep `given` (see the class docstring).

        A shorter read timeout of the caller's stays, and then every wait gets a scope.
        """
        if self.read_timeout is None:
            return None
        timeout = httpx2.Timeout(given)
        if timeout.read is not None and timeout.read < self.read_timeout:
            self.read_timeout, self.free_until = None, -math.inf
            return None
        return httpx2.Timeout(
            connect=timeout.connect, read=self.read_timeout, write=timeout.write, pool=timeout.pool
        )

    def _deadline(self) -> tuple[float, str, float]:
        """The current wait's deadline (`perf_counter()` time), its limit's name and seconds."""
        deadline, limit, seconds = self.fixed, self.fixed_limit, self.fixed_seconds
        gap = self.gap
        if gap and self.since + gap <= deadline:
            deadline, limit, seconds = self.since + gap, self.gap_limit, gap
        return deadline, limit, seconds

    async def first_wait(self, pending: Awaitable[T], *, sending: bool = False) -> T:
        """`pending` (`sending` the request, or reading a whole JSON answer), within the
        wait for the first chunk, which starts when the request is sent."""
        if sending:
            self.since = perf_counter()
            self._shift = anyio.current_time() - self.since
        deadline, limit, seconds = self._deadline()
        if deadline == math.inf:
            return await pending
        with anyio.CancelScope(deadline=deadline + self._shift) as scope:
            return await pending
        assert scope.cancelled_caught
        raise RunTimeout(limit, seconds)

    async def read(self, reader: AsyncIterator[bytes]) -> bytes:
        """The next bytes of `reader`, within the current wait's deadline.

        (`ModelStream` reads without this method while `free_until` allows.)
        """
        now = perf_counter()
        if self.fresh:
            self.since = now
        deadline, limit, seconds = self._deadline()
        if deadline == math.inf:
            return await reader.__anext__()
        if now >= deadline:
            raise RunTimeout(limit, seconds)
        with anyio.CancelScope(deadline=deadline + self._shift) as scope:
            return await reader.__anext__()
        assert scope.cancelled_caught
        raise RunTimeout(limit, seconds)

    def turn(self, chunks: bool) -> None:
        """A read brought chunks (`chunks`) after one that did not, or the other way round.

        Called only on such a change, so a steady stream makes no call per read.
        """
        self.fresh = chunks
        if chunks:
            self.gap, self.gap_limit = self.idle, "idle"

    def timed_out(self, exc: Exception) -> RunTimeout | None:
        """The limit that `exc` reports, if it is the HTTP read timeout set for `idle`."""
        if self.read_timeout is None or not isinstance(exc, httpx2.TimeoutException):
            return None
        if perf_counter() >= self.fixed:
            return RunTimeout(self.fixed_limit, self.fixed_seconds)
        return RunTimeout("idle", self.read_timeout)
