"""A step's images and files into the conversation: parts of their tool messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..tools._media import Media, media_content

__all__ = ["with_media"]


def with_media(messages: list[dict[str, Any]], media: Mapping[str, tuple[Media, ...]]) -> None:
    """Give the step's last tool messages that returned media their content parts.

    Only the step's own messages (at the end of `messages`) are looked at.
    """
    left = len(media)
    for message in reversed(messages):
        if left == 0 or message.get("role") != "tool":
            return
        items = media.get(message.get("tool_call_id"))
        if items:
            message["content"] = media_content(message["content"], items)
            left -= 1
