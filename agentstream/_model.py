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

import functools
import inspect
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx2
import openai
from openai.resources.chat import AsyncCompletions

from ._exceptions import ModelError, StreamError
from ._sse import SSEDecoder, decode_chunk

__all__ = ["ModelStream", "check_fields", "retry_after"]

# After `[DONE]`, how long and how much to read for the body's end (see `_drain`).
_DRAIN_SECONDS = 0.25
_DRAIN_BYTES = 64 * 1024


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


class ModelStream:
    """One streaming request; iterate `chunks()` for the chunks in wire order.

    `done` tells whether the server ended the body with `[DONE]` (or sent one whole
    JSON answer): a body that stops without it, and without a finish reason, may
    have been cut. With `client_retries=False` the client sends the request once,
    whatever its `max_retries`. `request_id` is the request's idempotency key, kept
    across the client's own retries of it (the SDK would otherwise make a UUID).
    """

    __slots__ = ("_client", "_client_retries", "_params", "_request_id", "done")

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        params: Mapping[str, Any],
        *,
        client_retries: bool = True,
        request_id: str | None = None,
    ) -> None:
        self._client = client
        self._params = params
        self._client_retries = client_retries
        self._request_id = request_id
        self.done = False

    async def chunks(self) -> AsyncGenerator[dict[str, Any], None]:
        """Send the request and yield each chunk as a dict.

        Raises `ModelError` when the request fails before the stream starts and
        `StreamError` when the stream breaks or carries a malformed chunk. Close the
        generator (`aclosing`) to close the HTTP response.
        """
        body, options = _split(self._params)
        if not self._client_retries:
            options["max_retries"] = 0
        if self._request_id is not None:
            options["idempotency_key"] = self._request_id
        try:
            response = await self._client.post(
                "/chat/completions",
                body=body,
                options=options,
                cast_to=httpx2.Response,
                stream=True,
                stream_cls=None,
            )
        except openai.APIError as exc:
            raise _model_error(exc) from exc
        try:
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                yield await _whole_answer(response)
                self.done = True
                return
            decoder = SSEDecoder()
            reader = response.aiter_bytes().__aiter__()
            while True:
                try:
                    raw = await reader.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:  # the transport's own errors, whatever its library
                    raise StreamError(f"the stream broke: {type(exc).__name__}: {exc}") from exc
                for event in decoder.feed(raw):
                    chunk = decode_chunk(event)
                    if chunk is None:
                        self.done = True
                        await _drain(reader)
                        return
                    yield chunk
            for event in decoder.flush():
                chunk = decode_chunk(event)
                if chunk is None:
                    self.done = True
                    return
                yield chunk
        finally:
            await response.aclose()


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


async def _whole_answer(response: httpx2.Response) -> dict[str, Any]:
    try:
        raw = await response.aread()
    except Exception as exc:  # the transport's own errors, whatever its library
        raise StreamError(f"the answer broke: {type(exc).__name__}: {exc}") from exc
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise StreamError(f"the server sent a body that is not JSON: {exc}") from None
    if not isinstance(body, Mapping):
        raise StreamError("the server sent a body that is not a JSON object")
    return _completion_as_chunk(body)
