"""A call's images and files in the run's state: content parts of its tool message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..state._state import PendingCall
from ..tools._media import Media, media_part

__all__ = ["media_parts", "tool_content"]


def media_parts(media: Iterable[Media]) -> list[dict[str, Any]]:
    """Images and files as chat content parts (base64 data URLs), plain JSON to save."""
    return [media_part(item) for item in media]


def tool_content(call: PendingCall) -> str | list[dict[str, Any]]:
    """A call's tool message content: its text, then its images and files if any."""
    text = call.output or ""
    if not call.media:
        return text
    return [{"type": "text", "text": text}, *call.media]
