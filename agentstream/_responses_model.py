"""One streamed Responses API request: the SDK sends it, agentstream reads the events.

The twin of `_model.ModelStream` for `POST /responses`: the `openai` client's public
`post` sends the request (configuration, authentication, HTTP errors, its own retries
before any output), and the SSE body is decoded here into event dicts for the
`ResponsesAssembler`. The stream is whole once a terminal event (`response.completed`,
`.incomplete` or `.failed`) arrived; `[DONE]`, which some servers add, also ends it.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx2
import openai
from openai.resources.responses import AsyncResponses

from ._exceptions import StreamError
from ._model import _drain, _model_error, _split
from ._redact import redact
from ._sse import SSEDecoder, decode_chunk

__all__ = ["ResponsesStream", "check_responses_fields"]

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


@functools.cache
def _known_fields() -> frozenset[str]:
    return frozenset(inspect.signature(AsyncResponses.create).parameters) - {"self"}


def check_responses_fields(request: Mapping[str, Any]) -> str | None:
    """Why these request fields would be refused on the Responses API, or None."""
    unknown = sorted(set(request) - _known_fields())
    if unknown:
        return (
            f"unknown Responses API request field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}: pass fields that only your server knows in extra_body={{...}}"
        )
    return None


class ResponsesStream:
    """One streaming Responses request; iterate `chunks()` for the event dicts.

    `done` tells whether the stream reached a terminal event or `[DONE]`. `secret`,
    when given, is masked in error events (`error`, `response.failed`) before anything
    reads them.
    """

    __slots__ = ("_client", "_client_retries", "_params", "_request_id", "_secret", "done")

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        params: Mapping[str, Any],
        *,
        client_retries: bool = True,
        request_id: str | None = None,
        secret: str | None = None,
    ) -> None:
        self._client = client
        self._params = params
        self._client_retries = client_retries
        self._request_id = request_id
        self._secret = secret
        self.done = False

    async def chunks(self) -> AsyncGenerator[dict[str, Any], None]:
        """Send the request and yield each event as a dict.

        Raises `ModelError` when the request fails before the stream starts and
        `StreamError` when the stream breaks or carries a malformed event.
        """
        body, options = _split(self._params)
        if not self._client_retries:
            options["max_retries"] = 0
        if self._request_id is not None:
            options["idempotency_key"] = self._request_id
        try:
            response = await self._client.post(
                "/responses",
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
                yield self._clean(await _whole_answer(response))
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
                    payload = decode_chunk(event)
                    if payload is None:
                        self.done = True
                        await _drain(reader)
                        return
                    yield self._clean(payload)
                    if payload.get("type") in _TERMINAL:
                        self.done = True
                        await _drain(reader)
                        return
            for event in decoder.flush():
                payload = decode_chunk(event)
                if payload is None:
                    self.done = True
                    return
                yield self._clean(payload)
        finally:
            await response.aclose()

    def _clean(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload, with the secret masked when it reports an error."""
        secret = self._secret
        if secret is not None and ("error" in payload or payload.get("type") == "response.failed"):
            masked: dict[str, Any] = redact(payload, secret)
            return masked
        return payload


async def _whole_answer(response: httpx2.Response) -> dict[str, Any]:
    """A whole response object (a server that ignored `stream`) as its terminal event."""
    try:
        raw = await response.aread()
    except Exception as exc:  # the transport's own errors, whatever its library
        raise StreamError(f"the answer broke: {type(exc).__name__}: {exc}") from exc
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise StreamError(f"the server sent a body that is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise StreamError("the server sent a body that is not a JSON object")
    status = body.get("status")
    kind = {"incomplete": "response.incomplete", "failed": "response.failed"}.get(
        status if isinstance(status, str) else "", "response.completed"
    )
    if "error" in body and body.get("error") and kind == "response.completed":
        kind = "response.failed"
    return {"type": kind, "response": body}
