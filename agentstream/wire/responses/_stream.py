"""One streamed Responses API request: `ModelStream` posting to `/responses`.

Everything about reading the body is `ModelStream`'s (the SDK sends the request, the
key is masked in the bytes, SSE events are bounded and decoded, JSON depth and
surrogates are handled); only the path and a whole JSON answer differ. Whether the
stream is whole is the `ResponsesAssembler`'s to say (a terminal event), not `[DONE]`.
A background response (`background: true`) outlives its connection: `background_events`
takes a cut stream up again from its last `sequence_number` instead of asking again.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import httpx2
import openai
from openai.resources.responses import AsyncResponses

from ..._exceptions import StreamError
from ..chat._stream import ModelStream
from ..chat._stream import _model_error as model_error

__all__ = [
    "MAX_RESUMES",
    "ResponsesStream",
    "ResumedStream",
    "background_events",
    "check_responses_fields",
]

_TERMINAL = {"incomplete": "response.incomplete", "failed": "response.failed"}


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


class ResponsesStream(ModelStream):
    """One streaming `POST /responses`; iterate `chunks()` for the event dicts."""

    __slots__ = ()

    _path = "/responses"

    @staticmethod
    def _whole_chunk(body: Mapping[str, Any]) -> dict[str, Any]:
        """A whole response object (a server that ignored `stream`) as its terminal event."""
        status = body.get("status")
        kind = _TERMINAL.get(status if isinstance(status, str) else "", "response.completed")
        if body.get("error") and kind == "response.completed":
            kind = "response.failed"
        return {"type": kind, "response": body}


_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
MAX_RESUMES = 5
"""How many times one background stream is taken up again before the attempt fails."""


class ResumedStream(ResponsesStream):
    """A background response's events after `starting_after`, streamed again by the
    server (`GET /responses/{id}?stream=true&starting_after=N`): no new generation."""

    __slots__ = ("_after", "_response_id")

    def __init__(
        self, client: openai.AsyncOpenAI, response_id: str, after: int, **options: Any
    ) -> None:
        super().__init__(client, {}, **options)
        self._response_id = response_id
        self._after = after

    async def _send(self, secret: str | None) -> httpx2.Response:
        client = self._client if self._client_retries else self._client.with_options(max_retries=0)
        try:
            stream = await client.responses.retrieve(
                self._response_id, stream=True, starting_after=self._after
            )
        except openai.APIError as exc:
            raise model_error(exc) from exc
        # The SDK's stream reads nothing until iterated: its response is read as any other.
        return stream.response


def _response_id(event: Mapping[str, Any]) -> str | None:
    response = event.get("response")
    found = response.get("id") if isinstance(response, Mapping) else None
    return found if isinstance(found, str) and found else None


async def background_events(
    first: ResponsesStream, client: openai.AsyncOpenAI, **options: Any
) -> AsyncGenerator[dict[str, Any], None]:
    """The events of a background response, taken up again where a cut left them.

    When the body breaks (or ends before a terminal event) after the response's id and
    a `sequence_number` came, the rest is asked for with `ResumedStream`, up to
    `MAX_RESUMES` times; an event already passed on (by its sequence number) is never
    passed on twice. Anything else fails as an attempt does.
    """
    stream: ResponsesStream = first
    response_id: str | None = None
    last: int | None = None
    for resumes in range(MAX_RESUMES + 1):
        ended = False
        try:
            async with aclosing(stream.chunks()) as events:
                async for event in events:
                    number = event.get("sequence_number")
                    if type(number) is int:
                        if last is not None and number <= last:
                            continue  # sent again by the server: shown already
                        last = number
                    if response_id is None:
                        response_id = _response_id(event)
                    ended = ended or event.get("type") in _ENDS
                    yield event
        except StreamError:
            if response_id is None or last is None or resumes == MAX_RESUMES:
                raise
        if ended or response_id is None or last is None:
            return
        stream = ResumedStream(client, response_id, last, **options)
