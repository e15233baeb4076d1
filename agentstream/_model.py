"""One streamed request to the model: the SDK sends it, agentstream reads the bytes.

The `openai` client does what it is good at (configuration, authentication, HTTP
errors, its own retries before any output) through `with_streaming_response`; the SSE
framing and JSON of the body are parsed here, which costs a fraction of building the
SDK's typed object for every chunk.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import openai

from ._exceptions import ModelError, StreamError
from ._sse import SSEDecoder, decode_chunk

__all__ = ["ModelStream", "retry_after"]

# After `[DONE]`, how long and how much to read for the body's end (see `_drain`).
_DRAIN_SECONDS = 0.25
_DRAIN_BYTES = 64 * 1024


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
    have been cut.
    """

    __slots__ = ("_client", "_params", "done")

    def __init__(self, client: openai.AsyncOpenAI, params: Mapping[str, Any]) -> None:
        self._client = client
        self._params = params
        self.done = False

    async def chunks(self) -> AsyncGenerator[dict[str, Any], None]:
        """Send the request and yield each chunk as a dict.

        Raises `ModelError` when the request fails before the stream starts and
        `StreamError` when the stream breaks or carries a malformed chunk. Close the
        generator (`aclosing`) to close the HTTP response.
        """
        try:
            manager = self._client.chat.completions.with_streaming_response.create(**self._params)
            async with manager as response:
                content_type = response.headers.get("content-type", "")
                if "json" in content_type and "event-stream" not in content_type:
                    yield await _whole_answer(response)
                    self.done = True
                    return
                decoder = SSEDecoder()
                reader = response.iter_bytes().__aiter__()
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
        except openai.APIError as exc:
            raise _model_error(exc) from exc


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


async def _whole_answer(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(await response.read())
    except ValueError as exc:
        raise StreamError(f"the server sent a body that is not JSON: {exc}") from None
    if not isinstance(body, Mapping):
        raise StreamError("the server sent a body that is not a JSON object")
    return _completion_as_chunk(body)
