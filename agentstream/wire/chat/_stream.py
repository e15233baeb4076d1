"""One streamed request to the model: the SDK sends it, agentstream reads the bytes.

The `openai` client does what it is good at (configuration, authentication, the base
URL and Azure's deployments, HTTP errors, its own retries before any output) through
its public `post`, asked for the raw streaming response; the SSE framing and JSON of the
body are parsed here, which costs a fraction of building the SDK's typed object for
every chunk. `chat.completions.create` is not used because it first walks the whole
request against its parameter types, a transformation that is the identity for chat
requests and costs more than a millisecond on a long conversation; the fields it would
have rejected are checked once, when the `Agent` is made (`check_fields`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from time import perf_counter
from types import MappingProxyType
from typing import Any

import anyio
import httpx2
import openai
from openai.resources.chat import AsyncCompletions

from ..._exceptions import ModelError, RunTimeout, SetupError, StreamError
from ..._json import TooDeep, loads, repair
from ..._redact import MASK, clip, secret_of
from .._bounds import StreamBounds
from .._media import refused_media
from .._sse import SSEDecoder, decode_chunk

__all__ = ["ModelStream", "check_fields", "event_limit", "retry_after"]

# After `[DONE]`, how long and how much to read for the body's end (see `_drain`).
_DRAIN_SECONDS = 0.25
_DRAIN_BYTES = 64 * 1024
# How much of a body not labelled SSE is read, waiting for an event, before giving up.
_SNIFF_BYTES = 64 * 1024


# `chat.completions.create` arguments that are options of the request, not body fields,
# under the names `post` takes them by.
_OPTIONS = {
    "extra_headers": "headers",
    "extra_query": "params",
    "extra_body": "extra_json",
    "timeout": "timeout",
}


@functools.cache
def _known_fields() -> frozenset[str]:
    return frozenset(inspect.signature(AsyncCompletions.create).parameters) - {"self"}


def check_fields(request: Mapping[str, Any]) -> str | None:
    """Why these request fields would be refused by the SDK, or None when they are fine."""
    unknown = sorted(set(request) - _known_fields())
    if unknown:
        return (
            f"unknown request field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
            "pass fields that only your server knows in extra_body={...}"
        )
    response_format = request.get("response_format")
    if isinstance(response_format, type):
        return "response_format takes a dict (a JSON schema), not a class"
    return None


def _split(params: Mapping[str, Any]) -> tuple[dict[str, Any], openai.RequestOptions]:
    """The JSON body and the request options (headers, query, timeout) of a request."""
    body: dict[str, Any] = {}
    options: Any = {"security": {"bearer_auth": True}}
    for key, value in params.items():
        if isinstance(value, (openai.NotGiven, openai.Omit)):
            continue
        option = _OPTIONS.get(key)
        if option is None:
            body[key] = value
        elif value is not None or option == "timeout":  # timeout=None: no time limit
            options[option] = value
    return body, options


def _model_error(exc: openai.APIError) -> ModelError:
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        should_retry = headers.get("x-should-retry")
        return ModelError(
            f"the server answered {exc.status_code}: {_detail(exc)}",
            status_code=exc.status_code,
            body=exc.body,
            retry_after=retry_after(headers),
            should_retry={"true": True, "false": False}.get(str(should_retry).lower()),
        )
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("the request to the server timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause and str(cause) else ""
        return ModelError(f"could not connect to the server{detail}")
    return ModelError(f"the request failed: {exc.message}", body=exc.body)


def _detail(exc: openai.APIStatusError) -> str:
    """The server's own words about an HTTP error, without the SDK's prefix."""
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    return re.sub(r"^Error code: \d+ - ", "", exc.message)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a response asks the client to wait: `Retry-After-Ms` or `Retry-After`.

    `Retry-After` may be seconds or an HTTP date; None when neither header can be read.
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        if seconds == seconds:  # not nan
            return min(max(seconds, 0.0), 86400.0)
    return None


def _completion_as_chunk(body: Mapping[str, Any]) -> dict[str, Any]:
    """A whole `chat.completion` (from a server that ignored `stream`) as one chunk."""
    choices = [
        {
            "index": choice.get("index", 0),
            "delta": choice.get("message") or {},
            "finish_reason": choice.get("finish_reason"),
        }
        for choice in body.get("choices") or ()
        if isinstance(choice, Mapping)
    ]
    chunk: dict[str, Any] = {key: body[key] for key in ("id", "model", "usage") if key in body}
    chunk["choices"] = choices
    if "error" in body:
        chunk["error"] = body["error"]
    return chunk


def event_limit(max_argument_size: int | None) -> int | None:
    """The largest SSE event a stream may carry, for calls of up to `max_argument_size`.

    Arguments sent whole in one event arrive JSON-escaped, inside a chunk: each
    character can take up to 6 bytes there (`\\u0000`), and 1 MiB is left for the rest.
    No limit when the arguments have none.
    """
    return None if max_argument_size is None else 6 * max_argument_size + (1 << 20)


DEFAULT_EVENT_LIMIT = event_limit(1_000_000)


class ModelStream:
    """One streaming request; iterate `chunks()` for the chunks in wire order.

    `done` tells whether the server ended the body with `[DONE]` (or sent one whole
    JSON answer): a body that stops without it, and without a finish reason, may
    have been cut. With `client_retries=False` the client sends the request once,
    whatever its `max_retries`. `request_id` is the request's idempotency key, kept
    across the client's own retries of it (the SDK would otherwise make a UUID).
    `max_event_size` bounds, in bytes, one SSE event (or a whole JSON answer): a larger
    one is refused with `StreamError` before it is buffered whole (see `event_limit`).
    `bounds`: the time limits of the stream's waits (`RunTimeout` past one).

    The client's API key is masked in the bytes received before anything is made of
    them, and text that cannot be sent as UTF-8 is repaired (see `_json`).
    """

    __slots__ = (
        "_bounds",
        "_client",
        "_client_retries",
        "_max_event_size",
        "_params",
        "_request_id",
        "done",
    )

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        params: Mapping[str, Any],
        *,
        client_retries: bool = True,
        request_id: str | None = None,
        max_event_size: int | None = DEFAULT_EVENT_LIMIT,
        bounds: StreamBounds | None = None,
    ) -> None:
        self._bounds = bounds
        self._client = client
        self._params = params
        self._client_retries = client_retries
        self._request_id = request_id
        self._max_event_size = max_event_size
        self.done = False

    async def chunks(self) -> AsyncGenerator[dict[str, Any], None]:
        """Send the request and yield each chunk as a dict.

        Raises `ModelError` when the request fails before the stream starts (or the
        answer is not a stream: another content type and no event), `StreamError` when
        the stream breaks or carries a malformed chunk. Close the generator
        (`aclosing`) to close the HTTP response.
        """
        secret = secret_of(self._client.api_key)
        bounds = self._bounds
        if bounds is None:
            response = await self._send(secret)
        else:
            response = await bounds.first_wait(self._send(secret), sending=True)
        self._params = _SENT  # the request holds its encoded body: the dicts can go
        reader: AsyncIterator[bytes] | None = None
        try:
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                whole = _whole_answer(response, secret, self._max_event_size)
                body = await (whole if bounds is None else bounds.first_wait(whole))
                yield self._whole_chunk(body)
                self.done = True
                return
            decoder = SSEDecoder(secret=secret, max_event_size=self._max_event_size)
            # Where a surrogate pair's first half waits for its second (see decode_chunk).
            held: dict[tuple[Any, ...], str] = {}
            # A body of another type (an HTML page, say) is read as SSE all the same, in
            # case the server only mislabels it; its first bytes are kept to say what it
            # was if no event comes.
            sniff: list[bytes] | None = None if _is_sse(content_type) else []
            reader = _body(response)
            while True:
                try:
                    if bounds is None:
                        raw = await reader.__anext__()
                    elif bounds.fresh and (now := perf_counter()) <= bounds.free_until:
                        bounds.since = now  # the HTTP read timeout bounds this read
                        raw = await reader.__anext__()
                    else:
                        raw = await bounds.read(reader)
                except StopAsyncIteration:
                    break
                except RunTimeout:
                    raise
                except Exception as exc:  # the transport's own errors, whatever its library
                    if bounds is not None and (limit := bounds.timed_out(exc)) is not None:
                        raise limit from exc
                    raise StreamError(f"the stream broke: {type(exc).__name__}: {exc}") from exc
                decoded = decoder.chunks(raw, held)
                if bounds is not None and bool(decoded) is not bounds.fresh:
                    bounds.turn(bool(decoded))
                if sniff is not None:
                    sniff = _sniff(sniff, raw, decoded, content_type, secret)
                for chunk in decoded:
                    if chunk is None:
                        self.done = True
                        await _drain(reader)
                        return
                    yield chunk
            events = decoder.flush()
            if sniff is not None:
                _sniff(sniff, b"", events, content_type, secret, end=True)
            for event in events:
                chunk = decode_chunk(event, held)
                if chunk is None:
                    self.done = True
                    return
                yield chunk
        finally:
            # Closed here rather than left to the collector, which warns under trio (a
            # transport's own byte stream may be a plain iterator, without `aclose`).
            if (close := getattr(reader, "aclose", None)) is not None:
                with contextlib.suppress(Exception):
                    await close()
            await response.aclose()

    _path = "/chat/completions"
    """Where the request is posted (`ResponsesStream` posts to `/responses`)."""

    @staticmethod
    def _whole_chunk(body: Mapping[str, Any]) -> dict[str, Any]:
        """A whole JSON answer (a server that ignored `stream`) as one chunk."""
        return _completion_as_chunk(body)

    async def _send(self, secret: str | None) -> httpx2.Response:
        body, options = _split(self._params)
        if not self._client_retries:
            options["max_retries"] = 0
        if self._request_id is not None:
            options["idempotency_key"] = self._request_id
        if self._bounds is not None:
            given = options.get("timeout", self._client.timeout)
            if (timeout := self._bounds.request_timeout(given)) is not None:
                options["timeout"] = timeout
        for attempt in range(2):
            try:
                response: httpx2.Response = await self._client.post(
                    self._path,
                    body=body,
                    options=options,
                    cast_to=httpx2.Response,
                    stream=True,
                    stream_cls=None,
                )
            except openai.APIError as exc:
                raise refused_media(_model_error(exc), body) from exc
            except UnicodeEncodeError as exc:
                # Text no UTF-8 can carry (lone surrogates: a split emoji, a file name
                # that was not UTF-8) is sent with U+FFFD in its place.
                if attempt:
                    raise SetupError(f"the request cannot be encoded: {exc}") from None
                try:
                    body = repair(body)
                except TooDeep:
                    raise SetupError(f"the request is {TooDeep()}") from None
            except RecursionError:
                raise SetupError(f"the request is {TooDeep()}") from None
            else:
                return response
        raise AssertionError("unreachable")


_SENT: Mapping[str, Any] = MappingProxyType({})
"""A stream's parameters once its request is sent (see `ModelStream.chunks`)."""


def _is_sse(content_type: str) -> bool:
    return not content_type or "event-stream" in content_type


def _sniff(
    kept: list[bytes],
    raw: bytes,
    events: object,
    content_type: str,
    secret: str | None,
    *,
    end: bool = False,
) -> list[bytes] | None:
    """Keep the first bytes of a body that is not labelled SSE, until an event comes.

    Without any event by its end (or by `_SNIFF_BYTES`), it is not a stream: a
    `ModelError` (not retried: the server answered, with something else) says what it
    was. None once an event came: the body is a stream after all.
    """
    if events:
        return None
    if sum(map(len, kept)) < _SNIFF_BYTES:
        kept.append(raw)
    seen = b"".join(kept)
    if end or len(seen) >= _SNIFF_BYTES:
        start = clip(seen.decode("utf-8", "replace").strip(), 200, secret)
        raise ModelError(
            f"the server answered with content type {content_type!r}, not an event "
            f"stream; it began: {start!r}",
            status_code=200,
            body=start,
            should_retry=False,
        )
    return kept


def _body(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive.

    Without a content encoding (as servers send event streams), straight from the
    response's byte stream: `aiter_bytes` would pass each read through a decoder and a
    chunker that leave it as it is, two Python calls a read. Compressed bodies are
    read through `aiter_bytes`, which decompresses them.
    """
    stream = response.stream
    if isinstance(stream, httpx2.AsyncByteStream):
        encoding = response.headers.get("content-encoding")
        if encoding is None or encoding.strip().lower() in ("", "identity"):
            return stream.__aiter__()
    return response.aiter_bytes()


async def _drain(reader: AsyncIterator[bytes]) -> None:
    """Read the little that follows `[DONE]` (the end of a chunked body).

    An HTTP/1.1 connection whose response was closed before its end cannot be reused,
    so without this every request would open a new connection. A server that keeps
    sending, or does not end the body promptly, is cut off as before.
    """
    left = _DRAIN_BYTES
    with anyio.move_on_after(_DRAIN_SECONDS):
        try:
            async for raw in reader:
                left -= len(raw)
                if left < 0:
                    return
        except Exception:  # the answer is complete; what breaks after it does not matter
            return


async def _whole_answer(
    response: httpx2.Response, secret: str | None, limit: int | None
) -> Mapping[str, Any]:
    pieces: list[bytes] = []
    size = 0
    try:
        async for piece in response.aiter_bytes():
            size += len(piece)
            if limit is not None and size > limit:
                raise StreamError(f"the server sent a JSON answer of more than {limit} bytes")
            pieces.append(piece)
    except StreamError:
        raise
    except Exception as exc:  # the transport's own errors, whatever its library
        raise StreamError(f"the answer broke: {type(exc).__name__}: {exc}") from exc
    raw = b"".join(pieces)
    if secret is not None:
        raw = raw.replace(secret.encode(), MASK.encode())
    try:
        body = loads(raw)
    except ValueError as exc:
        raise StreamError(f"the server sent a body that is not JSON: {exc}") from None
    if not isinstance(body, Mapping):
        raise StreamError("the server sent a body that is not a JSON object")
    return body
