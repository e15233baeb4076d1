"""Images and files in tool results, in the shape each wire takes (no I/O).

The run keeps a tool result that holds images or files as a tool message whose content
is a list of chat parts: a `text` part, then `image_url` and `file` parts with base64
data URLs. The Responses API takes them in the call's output (`input_image`,
`input_file`); Chat Completions tool messages carry text only, so there the text stays
in the tool message and the images and files follow in one user message after the
step's tool messages, each group introduced by the call it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._exceptions import MediaRefused, ModelError

__all__ = ["chat_media", "has_media", "refused_media", "responses_output"]

_MEDIA_PARTS = frozenset({"image_url", "file", "input_image", "input_file"})
# What servers say when a model takes no images or files: "image_url is only supported
# by certain models", "image input is not supported", "not a multimodal model", ...
_NAMES_MEDIA = re.compile(
    r"image|input_file|file_data|multimodal|multi-modal|vision|mmproj", re.IGNORECASE
)


def has_media(content: Any) -> bool:
    """Whether a message's content holds a part that is not text."""
    return type(content) is list and any(
        isinstance(part, Mapping) and part.get("type") != "text" for part in content
    )


def _text(content: list[Any]) -> str:
    return "\n".join(
        part["text"]
        for part in content
        if isinstance(part, Mapping)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    )


def chat_media(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` for a Chat Completions request, tool results' media moved to user messages.

    The same list when no tool message holds a list of parts (one scan of the roles).
    """
    # A plain loop, content first: half the cost of `any()` over a generator (about
    # 10 us for 100 messages, against some 700 us to encode them as JSON).
    for message in messages:
        if type(message.get("content")) is list and message.get("role") == "tool":
            break
    else:
        return messages
    out: list[dict[str, Any]] = []
    attached: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "tool":
            if attached:
                out.append({"role": "user", "content": attached})
                attached = []
            out.append(message)
        elif type(content) is list and has_media(content):
            out.append({**message, "content": _text(content)})
            call_id = message.get("tool_call_id")
            attached.append({"type": "text", "text": f"Attached to the result of call {call_id}:"})
            attached.extend(
                dict(part)
                for part in content
                if isinstance(part, Mapping) and part.get("type") != "text"
            )
        else:
            out.append(message)
    if attached:
        out.append({"role": "user", "content": attached})
    return out


def _input_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        detail = image.get("detail", "auto") if isinstance(image, Mapping) else "auto"
        return {"type": "input_image", "image_url": url, "detail": detail}
    if kind == "file":
        file = part.get("file")
        item: dict[str, Any] = {"type": "input_file"}
        if isinstance(file, Mapping):
            item.update(
                (key, file[key]) for key in ("file_data", "filename", "file_id") if key in file
            )
        return item
    return dict(part)


def responses_output(content: Any) -> list[dict[str, Any]] | None:
    """A tool result's parts as a `function_call_output`'s output list, or None when
    the content is text alone (it then goes as a string, as before)."""
    if not has_media(content):
        return None
    return [_input_part(part) for part in content if isinstance(part, Mapping)]


def _sends_media(body: Mapping[str, Any]) -> bool:
    """Whether a request body holds an image or a file part (messages or input items)."""
    for message in [*(body.get("messages") or ()), *(body.get("input") or ())]:
        if not isinstance(message, Mapping):
            continue
        for key in ("content", "output"):
            parts = message.get(key)
            if type(parts) is list and any(
                isinstance(part, Mapping) and part.get("type") in _MEDIA_PARTS for part in parts
            ):
                return True
    return False


def refused_media(error: ModelError, body: Mapping[str, Any]) -> ModelError:
    """`error` as a `MediaRefused` when the server refused (400) a request holding images
    or files and its words name them; else `error` itself."""
    said = f"{error.message} {error.body!r}"
    if error.status_code != 400 or not _NAMES_MEDIA.search(said) or not _sends_media(body):
        return error
    return MediaRefused(
        "the server refused the images or files in the request (this model may not take "
        f"them; a tool returned them, or the prompt holds them): {error.message}",
        status_code=error.status_code,
        body=error.body,
        retry_after=error.retry_after,
        should_retry=error.should_retry,
    )
