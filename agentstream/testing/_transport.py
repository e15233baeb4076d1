"""httpx2 transports that answer from a scripted model in-process."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import httpx2

from ._request import ModelRequest
from ._wire import Answer

__all__ = ["AsyncScriptedTransport", "Handler", "ScriptedTransport"]

Handler = Callable[[ModelRequest], Answer]

_CUT = "peer closed connection without sending complete message body (incomplete chunked read)"


def _model_request(request: httpx2.Request, content: bytes) -> ModelRequest:
    headers = {name.lower(): value for name, value in request.headers.items()}
    query = request.url.query.decode("ascii")
    return ModelRequest.from_http(request.method, request.url.path, headers, content, query)


def _read_timeout(request: httpx2.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return read if isinstance(read, (int, float)) else None


class _AsyncBody(httpx2.AsyncByteStream):
    """Yields an answer's events, sleeping with anyio (asyncio or trio) between them.

    An iterator object rather than an async generator, so nothing is left to finalize
    when a consumer stops early. A wait longer than the request's read timeout fails
    with `httpx2.ReadTimeout` when the timeout is up, as a socket read would.
    """

    __slots__ = ("_answer", "_next", "_request")

    def __init__(self, answer: Answer, request: httpx2.Request) -> None:
        self._answer = answer
        self._request = request
        self._next = 0

    def __aiter__(self) -> _AsyncBody:
        return self

    async def __anext__(self) -> bytes:
        answer, i = self._answer, self._next
        if i < len(answer.events):
            self._next = i + 1
            # Always a checkpoint, as a real socket read is: a flat-out stream must not
            # starve the consumer's other tasks.
            await self._wait(answer.delays[i])
            return answer.events[i]
        if i == len(answer.events):
            self._next = i + 1
            if answer.tail_delay:
                await self._wait(answer.tail_delay)
            if answer.broken:
                raise httpx2.RemoteProtocolError(_CUT, request=self._request)
        raise StopAsyncIteration

    async def _wait(self, seconds: float) -> None:
        read = _read_timeout(self._request)
        if read is not None and seconds > read:
            await anyio.sleep(read)
            raise httpx2.ReadTimeout("timed out", request=self._request)
        await anyio.sleep(seconds)

    async def aclose(self) -> None:
        self._next = len(self._answer.events) + 1


class _SyncBody(httpx2.SyncByteStream):
    """The blocking twin of `_AsyncBody`."""

    __slots__ = ("_answer", "_next", "_request")

    def __init__(self, answer: Answer, request: httpx2.Request) -> None:
        self._answer = answer
        self._request = request
        self._next = 0

    def __iter__(self) -> _SyncBody:
        return self

    def __next__(self) -> bytes:
        answer, i = self._answer, self._next
        if i < len(answer.events):
            self._next = i + 1
            if answer.delays[i]:
                time.sleep(answer.delays[i])
            return answer.events[i]
        if i == len(answer.events):
            self._next = i + 1
            if answer.tail_delay:
                time.sleep(answer.tail_delay)
            if answer.broken:
                raise httpx2.RemoteProtocolError(_CUT, request=self._request)
        raise StopIteration

    def close(self) -> None:
        self._next = len(self._answer.events) + 1


class AsyncScriptedTransport(httpx2.AsyncBaseTransport):
    """An async transport whose every request is answered by `handle`."""

    def __init__(self, handle: Handler) -> None:
        self._handle = handle

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        answer = self._handle(_model_request(request, await request.aread()))
        return httpx2.Response(
            answer.status,
            headers=answer.headers,
            stream=_AsyncBody(answer, request),
            request=request,
        )


class ScriptedTransport(httpx2.BaseTransport):
    """A blocking transport whose every request is answered by `handle`."""

    def __init__(self, handle: Handler) -> None:
        self._handle = handle

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        answer = self._handle(_model_request(request, request.read()))
        return httpx2.Response(
            answer.status,
            headers=answer.headers,
            stream=_SyncBody(answer, request),
            request=request,
        )
