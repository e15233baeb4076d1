"""One streamed Responses API request: `ModelStream` posting to `/responses`.

Everything about reading the body is `ModelStream`'s (the SDK sends the request, the
key is masked in the bytes, SSE events are bounded and decoded, JSON depth and
surrogates are handled); only the path and a whole JSON answer differ. Whether the
stream is whole is the `ResponsesAssembler`'s to say (a terminal event), not `[DONE]`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from openai.resources.responses import AsyncResponses

from ._model import ModelStream

__all__ = ["ResponsesStream", "check_responses_fields"]

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
