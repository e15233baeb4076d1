"""Reading JSON from a server, and text a server sent, safely whatever its shape.

Two hazards of JSON from elsewhere are closed here, once for every reader:

- Depth. `json` recurses once per level and raises `RecursionError` a thousand levels
  down; pydantic-core's reader stops at `MAX_DEPTH` with a `ValueError`. Every document
  is refused past `MAX_DEPTH` levels, with `TooDeep`.
- Lone surrogates. A `"\\ud800"` escape decodes to a string that cannot be encoded as
  UTF-8, so sending it on (or printing it) raises `UnicodeEncodeError`. pydantic-core
  refuses such escapes; `json` takes them, and what it returns is repaired: a pair of
  escapes becomes its character, a lone half becomes U+FFFD.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic_core import from_json

__all__ = ["MAX_DEPTH", "TooDeep", "WholeObject", "clean_text", "loads", "repair"]

MAX_DEPTH = 200
"""The deepest nesting of arrays and objects read (pydantic-core's own limit)."""

Hold = Callable[[str, tuple[Any, ...]], str]
"""Called with each string (and where it is) of a repaired document; returns it fixed."""


class TooDeep(ValueError):
    """A JSON document nested more than `MAX_DEPTH` levels deep."""

    def __init__(self) -> None:
        super().__init__(f"nested more than {MAX_DEPTH} levels deep")


def loads(text: str | bytes, hold: Hold | None = None) -> Any:
    """Parse JSON text: `ValueError` when it is not JSON, `TooDeep` when nested too deep.

    Lone surrogate escapes are repaired (see `repair`); `hold` may take over how each
    string of such a document is fixed. `json`'s messages are kept for what it refuses.
    """
    try:
        return from_json(text)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise TooDeep() from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    return repair(value, hold)


def clean_text(text: str) -> str:
    """`text` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _clean(text: str, _path: tuple[Any, ...]) -> str:
    return clean_text(text)


def repair(value: Any, hold: Hold | None = None) -> Any:
    """A copy of JSON-like `value` whose strings (keys too) encode as UTF-8.

    Raises `TooDeep` past `MAX_DEPTH` levels (a copy made by recursion cannot go
    deeper safely). `hold(text, path)` fixes each string value, given its path of keys
    and positions; by default `clean_text`.
    """
    fix = hold or _clean

    def walk(item: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(item, str):
            return fix(item, path)
        if len(path) > MAX_DEPTH:
            raise TooDeep()
        if isinstance(item, dict):
            return {
                clean_text(k) if isinstance(k, str) else k: walk(v, (*path, k))
                for k, v in item.items()
            }
        if isinstance(item, (list, tuple)):
            return [walk(v, (*path, i)) for i, v in enumerate(item)]
        return item

    return walk(value, ())


_STRING_STOP = re.compile(r'["\\]')
_STRUCTURE = re.compile(r'["{}\[\]]')
_NOT_SPACE = re.compile(r"\S")


class WholeObject:
    """Tells whether text fed to it piece by piece is so far exactly one whole JSON object.

    Each character is looked at once, by regular expressions that skip what does not
    matter, so asking again after every piece costs time linear in the text overall. A
    balanced close is confirmed by one real parse of `text()`, and text that can no
    longer become one object (another value after it, not an object) stays refused.
    """

    __slots__ = ("_depth", "_escape", "_in_string", "_state", "seen")

    def __init__(self) -> None:
        self.seen = 0
        """How many characters have been fed."""
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._state = 0  # 0: nothing yet, 1: inside, 2: whole, 3: never whole

    def feed(self, piece: str, text: Callable[[], str]) -> bool:
        """Feed the next `piece`; whether all of it so far (`text()`) is one whole object."""
        self.seen += len(piece)
        position, size = 0, len(piece)
        while position < size and self._state != 3:
            if self._escape:
                self._escape = False
                position += 1
            elif self._in_string:
                found = _STRING_STOP.search(piece, position)
                if found is None:
                    break
                position = found.end()
                self._escape = found.group() == "\\"
                self._in_string = self._escape
            elif self._state != 1:
                found = _NOT_SPACE.search(piece, position)
                if found is None:
                    break
                # Something after a whole object, or a first character that opens none.
                self._state = 3 if self._state == 2 or found.group() != "{" else 1
                position = found.start()
            else:
                found = _STRUCTURE.search(piece, position)
                if found is None:
                    break
                position = found.end()
                self._structure(found.group(), text)
        return self._state == 2

    def _structure(self, char: str, text: Callable[[], str]) -> None:
        if char == '"':
            self._in_string = True
        elif char in "{[":
            self._depth += 1
        else:
            self._depth -= 1
            if self._depth <= 0:
                self._state = 2 if self._depth == 0 and _parses(text()) else 3


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True
