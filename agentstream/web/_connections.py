"""uvicorn's HTTP/1.1 protocol with the two limits it lacks: a header timeout and a cap.

uvicorn (0.55) times out an idle kept-alive connection, but not a client that opens a
connection and then sends its request head a byte at a time, nor does it cap open
connections (`limit_concurrency` answers 503 only once a request has arrived). A few
hundred such clients would hold every file descriptor. `guarded_h11` returns the h11
protocol class with both: a connection whose request head is not complete within
`header_timeout` seconds is closed, and connections beyond `max_connections` are closed
as soon as they are made.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["guarded_h11"]


def guarded_h11(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """The h11 protocol class with a header timeout and a connection cap (see above)."""

    class GuardedH11(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self.logger.warning("too many open connections: one refused")
                transport.close()
                return
            self._watch_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_watching()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _watch_head(self) -> None:
            """Time the request head being received; stop once it has been."""
            if not self._waiting_for_head():
                self._stop_watching()
            elif self._head_timer is None and not self.transport.is_closing():
                self._head_timer = self.loop.call_later(header_timeout, self._head_late)

        def _stop_watching(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11
