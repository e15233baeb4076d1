"""One tool call while it streams: its argument pieces, its partial parse, its fate.

Shared by both wires' assemblers. The partial parse of the arguments is refreshed on
every piece while they are short, then only once they have grown by a fixed fraction,
which keeps the total parsing work linear in their length.
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import Any

from pydantic_core import from_json

from .._json import WholeObject

__all__ = [
    "PartialCall",
    "drop_arguments",
    "final_arguments",
    "new_call_id",
    "reparse_arguments",
]

_new_object = object.__new__

# Below this many characters the partial arguments are re-parsed on every piece; above
# it, only once they have grown by 1/_REPARSE_FRACTION of their size since the last
# parse, which keeps the total parsing work linear in the arguments' length.
_SMALL_ARGUMENTS = 64
_REPARSE_FRACTION = 8


def new_call_id() -> str:
    """A fresh id in the style OpenAI uses, for calls that came without a usable one."""
    return "call_" + secrets.token_hex(12)


class PartialCall:
    """A tool call being assembled (also by the Responses assembler)."""

    __slots__ = (
        "extra",
        "generated",
        "id",
        "indexed",
        "name",
        "oversized",
        "parse_at",
        "partial",
        "pieces",
        "position",
        "size",
        "started",
        "text_at",
        "whole",
    )

    def __init__(self, position: int, parse_at: int, text_at: int = 0) -> None:
        self.position = position
        self.text_at = text_at  # pieces of text the choice had when the call opened
        self.generated = False
        self.id: str | None = None
        self.name: str | None = None
        self.pieces: list[str] = []
        self.size = 0
        self.started = False
        self.partial: Any = None
        self.parse_at = parse_at  # the size at which to parse the arguments again
        self.oversized = False
        self.indexed = False  # bound to an index the server sent
        self.whole: WholeObject | None = None  # made when first asked (`_names_new_call`)
        self.extra: dict[str, Any] | None = None  # unknown keys of its fragments, kept

    def arguments(self) -> str:
        return "".join(self.pieces)

    def tail(self, size: int) -> str:
        """The last `size` characters of the arguments (linear in `size`, not the whole)."""
        parts: list[str] = []
        for piece in reversed(self.pieces):
            if size <= 0:
                break
            parts.append(piece if len(piece) <= size else piece[-size:])
            size -= len(piece)
        return "".join(reversed(parts))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def final_arguments(call: PartialCall, finished: bool) -> str | None:
    """A passed call's arguments if they are a strictly valid JSON object, else None."""
    if call.name is None or call.oversized:
        return None
    text = call.arguments()
    if not text.strip():
        return "{}" if finished else None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return text if type(value) is dict else None


def reparse_arguments(call: PartialCall) -> None:
    """Refresh `call.partial` from its arguments so far, and say when to do it again."""
    text = call.arguments()
    if len(call.pieces) > 1:
        call.pieces = [text]  # keep the join for next time
    try:
        call.partial = from_json(text, allow_partial="trailing-strings")
    except ValueError:
        if text.strip():
            call.parse_at = 1 << 62  # not JSON so far: it will not become JSON later
            return
    # Whitespace alone waits on the same growing schedule: re-parsing it on every piece
    # would cost quadratic work on a megabyte of blanks.
    size = call.size
    call.parse_at = size + 1 if size < _SMALL_ARGUMENTS else size + size // _REPARSE_FRACTION


def drop_arguments(call: PartialCall) -> None:
    """Stop keeping a call's arguments: they passed the size limit."""
    if not call.oversized:
        call.oversized = True
        call.pieces = []
        call.partial = None
        call.parse_at = sys.maxsize
