"""Images and files a tool returns, and the parts of a tool message that carry them.

A tool returns an `Image` or a `File` (or a list mixing them with text); the run keeps
each one in the tool's message as a chat content part with a base64 data URL, so the
run's state stays plain JSON, and each wire reshapes those parts for its request
(`wire/_media.py`). Past the size limit an item is left out and the model is told.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import re
from typing import Any

from .._convert import clean_text, tool_result_text
from .._exceptions import SetupError

__all__ = [
    "File",
    "Image",
    "Media",
    "data_url",
    "media_content",
    "media_part",
    "result_parts",
    "tool_output",
]

_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_NAME_LIMIT = 255


def _checked_type(media_type: object, image: bool) -> str:
    if not isinstance(media_type, str) or not _MEDIA_TYPE.fullmatch(media_type.lower()):
        raise SetupError(f"not a media type (such as 'image/png'): {media_type!r:.80}")
    media_type = media_type.lower()
    if image and not media_type.startswith("image/"):
        raise SetupError(f"an Image needs an image/* media type, not {media_type!r}")
    return media_type


def _checked_data(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise SetupError(f"the data must be bytes, not {type(data).__name__}")


def _read(path: str | os.PathLike[str], media_type: str | None) -> tuple[bytes, str]:
    # Errors name the file, not its folders: the tool's failure reaches the model and
    # perhaps a web page.
    name = os.path.basename(os.fspath(path))
    guessed = media_type or mimetypes.guess_type(name)[0]
    if guessed is None:
        raise SetupError(f"cannot tell the media type of {name!r:.120}: pass media_type")
    try:
        with open(path, "rb") as file:
            return file.read(), guessed
    except OSError as exc:
        raise SetupError(f"cannot read {name!r:.120}: {exc.strerror}") from None


class Image:
    """An image a tool returns to the model: its bytes and media type (`image/png`, ...)."""

    __slots__ = ("data", "media_type")

    def __init__(self, data: bytes | bytearray | memoryview, media_type: str = "image/png") -> None:
        self.data: bytes = _checked_data(data)
        """The image's bytes."""
        self.media_type: str = _checked_type(media_type, image=True)
        """Its media type, such as `image/png` or `image/jpeg`."""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], media_type: str | None = None) -> Image:
        """The image in a file; its media type guessed from the name unless given."""
        data, found = _read(path, media_type)
        return cls(data, found)

    @property
    def data_url(self) -> str:
        """The image as a `data:` URL (base64)."""
        return data_url(self.media_type, self.data)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.media_type == other.media_type and self.data == other.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Image({self.media_type}, {len(self.data)} bytes)"


class File:
    """A file a tool returns to the model (a PDF, say): bytes, media type and a name."""

    __slots__ = ("data", "media_type", "name")

    def __init__(
        self, data: bytes | bytearray | memoryview, media_type: str, name: str | None = None
    ) -> None:
        self.data: bytes = _checked_data(data)
        """The file's bytes."""
        self.media_type: str = _checked_type(media_type, image=False)
        """Its media type, such as `application/pdf`."""
        if name is not None and not isinstance(name, str):
            raise SetupError(f"a file's name must be a str, not {type(name).__name__}")
        # The name goes to the model and into pages: no path, no control characters.
        clean = None if name is None else re.sub(r"[\x00-\x1f\x7f/\\]", "_", clean_text(name))
        self.name: str | None = clean[:_NAME_LIMIT] if clean else None
        """The name the model sees (its base name), if any."""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], media_type: str | None = None) -> File:
        """The file at `path`, named by its base name; its media type guessed unless given."""
        data, found = _read(path, media_type)
        return cls(data, found, os.path.basename(os.fspath(path)))

    @property
    def data_url(self) -> str:
        """The file as a `data:` URL (base64)."""
        return data_url(self.media_type, self.data)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine = (self.media_type, self.name, self.data)
        return mine == (other.media_type, other.name, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        named = f"{self.name!r}, " if self.name else ""
        return f"File({named}{self.media_type}, {len(self.data)} bytes)"


Media = Image | File
_MEDIA = (Image, File)


def data_url(media_type: str, data: bytes) -> str:
    """`data:<type>;base64,<data>`."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def _size(count: int) -> str:
    if count < 10_000:
        return f"{count} bytes"
    if count < 10_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


def _note(item: Media, limit: int | None) -> str:
    what = "image" if isinstance(item, Image) else f"file {item.name}" if item.name else "file"
    size = len(item.data)
    if limit is not None and size > limit:
        return (
            f"[{what}: {item.media_type}, {_size(size)}, not sent: over the limit of "
            f"{_size(limit)} per image or file]"
        )
    return f"[{what}: {item.media_type}, {_size(size)}]"


def media_part(item: Media) -> dict[str, Any]:
    if isinstance(item, Image):
        return {"type": "image_url", "image_url": {"url": item.data_url}}
    file: dict[str, Any] = {"file_data": item.data_url}
    if item.name:
        file["filename"] = item.name
    return {"type": "file", "file": file}


def result_parts(value: Any, limit: int | None) -> tuple[str, tuple[Media, ...]] | None:
    """The text and the images or files of what a tool returned, or None if it has none.

    `value` is an `Image`, a `File`, or a list or tuple holding some (with anything else,
    which becomes text). Each item adds a one-line note to the text (media type, size);
    one over `limit` bytes is left out and its note says why.
    """
    if isinstance(value, _MEDIA):
        items: list[Any] = [value]
    elif type(value) in (list, tuple) and any(isinstance(item, _MEDIA) for item in value):
        items = list(value)
    else:
        return None
    lines: list[str] = []
    kept: list[Media] = []
    for item in items:
        if isinstance(item, _MEDIA):
            lines.append(_note(item, limit))
            if limit is None or len(item.data) <= limit:
                kept.append(item)
        else:
            lines.append(tool_result_text(item))
    return "\n".join(lines), tuple(kept)


def tool_output(value: Any, limit: int | None) -> tuple[str, tuple[Media, ...]]:
    """The text a model receives for what a tool returned, and its images or files."""
    parts = result_parts(value, limit)
    return parts if parts is not None else (tool_result_text(value), ())


def media_content(text: str, media: tuple[Media, ...]) -> list[dict[str, Any]]:
    """A tool message's content: its text part, then a part per image or file."""
    return [{"type": "text", "text": text}, *(media_part(item) for item in media)]
