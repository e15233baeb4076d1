"""A minimal HTTP/1.1 loopback server for a `ScriptedModel`, on anyio TCP listeners only."""

from __future__ import annotations

from functools import partial
from http import HTTPStatus

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from ._model import ScriptedModel
from ._request import ModelRequest
from ._wire import Answer, error_answer

__all__ = ["serve"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_WRITE_SIZE = 64 * 1024
_GONE = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


class _BadRequest(Exception):
    """The client sent something this server cannot read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def serve(
    model: ScriptedModel,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `model` over HTTP on `host:port` until cancelled; reports the bound port.

    Use `port = await task_group.start(serve, model)`, then point any client at
    `http://127.0.0.1:{port}/v1`. Answers `POST .../chat/completions`,
    `POST .../responses` and `GET .../models`, keeps connections alive, and answers
    HTTP 500 if the model's policy raises.
    Cancelling it closes the listener and every connection at once.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(partial(_connection, model))


async def _connection(model: ScriptedModel, stream: anyio.abc.SocketStream) -> None:
    """Answer requests on one connection until the client closes it."""
    try:
        async with stream:
            reader = BufferedByteReceiveStream(stream)
            keep_alive = True
            while keep_alive:
                try:
                    request, keep_alive = await _read_request(reader)
                except _BadRequest as exc:
                    await _send(stream, error_answer(exc.status, str(exc)), keep_alive=False)
                    return
                try:
                    answer = model._handle(request)
                except Exception as exc:  # a broken policy must not take the server down
                    message = f"ScriptedModel policy raised {type(exc).__name__}: {exc}"
                    answer = error_answer(500, message, code="policy_error")
                keep_alive = await _send(stream, answer, keep_alive=keep_alive)
    except (*_GONE, anyio.DelimiterNotFound, OSError):
        return  # the client went away; nothing is left to answer


async def _read_request(reader: BufferedByteReceiveStream) -> tuple[ModelRequest, bool]:
    """Read one request; raise EndOfStream when the client closes between requests."""
    try:
        head = await reader.receive_until(b"\r\n\r\n", _MAX_HEAD)
    except anyio.DelimiterNotFound:
        raise _BadRequest(431, "Request head too large.") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest(400, "Malformed request line.") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(400, "Malformed header line.")
        name = name.lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadRequest(501, "Chunked request bodies are not supported.")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "Malformed Content-Length.") from None
    if not 0 <= length <= _MAX_BODY:
        raise _BadRequest(413, "Request body too large.")
    content = await reader.receive_exactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = version == "HTTP/1.1" and "close" not in connection
    path, _, query = target.partition("?")
    return ModelRequest.from_http(method, path, headers, content, query), keep_alive


def _head(answer: Answer, *, chunked: bool, length: int, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = "Error"
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in answer.headers]
    lines.append("transfer-encoding: chunked" if chunked else f"content-length: {length}")
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(stream: anyio.abc.SocketStream, answer: Answer, *, keep_alive: bool) -> bool:
    """Write `answer`; return whether the connection can take another request."""
    keep_alive = keep_alive and not answer.broken
    if not (answer.streaming or answer.broken):
        body = b"".join(answer.events)
        if answer.delays and answer.delays[0]:
            await anyio.sleep(answer.delays[0])
        head = _head(answer, chunked=False, length=len(body), keep_alive=keep_alive)
        await stream.send(head + body)
        return keep_alive
    # Events due at the same moment (no delay between them) go out in one write of up
    # to _WRITE_SIZE bytes, as they would from any server with a buffered socket: a
    # flat-out answer then costs the server a few writes rather than one per event.
    pending = [_head(answer, chunked=True, length=0, keep_alive=keep_alive)]
    size = 0
    for delay, event in zip(answer.delays, answer.events, strict=True):
        if pending and (delay or size >= _WRITE_SIZE):
            await stream.send(b"".join(pending))
            pending, size = [], 0
        if delay:
            await anyio.sleep(delay)
        pending.append(b"%x\r\n%s\r\n" % (len(event), event))
        size += len(event)
    if pending:
        await stream.send(b"".join(pending))
    if answer.tail_delay:
        await anyio.sleep(answer.tail_delay)
    if answer.broken:
        # End the connection without the last chunk: the client sees a cut body.
        await anyio.aclose_forcefully(stream)
        return False
    await stream.send(b"0\r\n\r\n")
    return keep_alive
