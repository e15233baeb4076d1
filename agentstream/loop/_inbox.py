"""What a step's tools report, on its way to the run: progress slots and an inbox."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.from_thread

__all__ = ["Inbox", "Progress"]

ItemT = TypeVar("ItemT")
"""What an inbox holds (a runner's: an event, a call with fresh progress, a wake-up)."""


class Progress:
    """The latest progress report of one call, written by its tool from any thread.

    Reports are coalesced: each replaces the last. From the event loop's thread the
    first report after a delivery wakes the relay (one marker in its inbox at most).
    A worker thread cannot touch the inbox without waiting for the loop: its first
    report makes that one hop (so the relay learns of it), later ones only fill the
    slot, which the relay reads every 0.05 seconds while that tool runs. Tools that
    never report cost the relay nothing.
    """

    __slots__ = ("emitted", "latest", "loop_thread", "pending", "threaded", "wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.latest: tuple[float | None, str | None, str | None] | None = None
        self.emitted: object = None
        self.pending = False
        self.threaded = False  # has reported from a worker thread: the relay polls it
        self.wake = wake
        self.loop_thread = threading.get_ident()

    def report(self, fraction: float | None, message: str | None, output: str | None) -> None:
        self.latest = (fraction, message, output)  # one assignment: safe from a thread
        if threading.get_ident() == self.loop_thread:
            if not self.pending:
                self.pending = True
                self.wake()
        elif not self.threaded:
            self.threaded = True
            # Not an anyio worker thread, or the run is over: the slot is read anyway
            # when the tool ends.
            with contextlib.suppress(Exception):
                anyio.from_thread.run_sync(self.wake)

    def take(self) -> tuple[float | None, str | None, str | None] | None:
        """The latest report if it has not been delivered yet."""
        self.pending = False
        latest = self.latest
        if latest is None or latest is self.emitted:
            return None
        self.emitted = latest
        return latest


class Inbox(Generic[ItemT]):
    """What the step's calls report, in order, until the runner takes it (`ToolRunner`).

    Written from the event loop's thread alone (a worker thread's report makes its hop
    first, see `Progress`). A queue, and the event (`waiter`) the runner waits on when
    it is empty: cheaper than a memory object stream, whose `receive` adds a checkpoint
    to each wait.
    Once closed (the run left), what still comes (an abandoned thread's end) is dropped.
    """

    __slots__ = ("closed", "items", "waiter")

    def __init__(self) -> None:
        self.items: collections.deque[ItemT] = collections.deque()
        self.waiter: anyio.Event | None = None
        self.closed = False

    def put(self, item: ItemT) -> None:
        if self.closed:
            return
        self.items.append(item)
        if self.waiter is not None:
            self.waiter.set()

    def close(self) -> None:
        self.closed = True
        self.items.clear()
