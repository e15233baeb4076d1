"""One conversion of arbitrary Python values to JSON-ready data, and to the text a model sees.

It never raises and its work is bounded: cycles become a marker, nesting past
`MAX_DEPTH` levels becomes a marker, and past a budget of nodes and characters (shared
references count each time they are reached) the rest is left out with a marker.

- `None`, bools, ints, floats and strs stay as they are (an int too long to print in
  decimal becomes a short description); str and int subclasses become the plain value.
- Mappings become dicts with string keys (`1` -> `"1"`, `True` -> `"true"`); lists,
  tuples and other sequences become lists; sets become lists, sorted where their items
  can be compared.
- bytes are decoded as UTF-8, an invalid byte becoming U+FFFD; in text, a lone
  surrogate (an undecodable file name, half an emoji) becomes U+FFFD too.
- Enums become their value; dataclasses a dict of their fields; pydantic models their
  JSON dump (`model_dump(mode="json")`); exceptions `{"type", "message"}`.
- Dates, times, Decimals, UUIDs, paths and the other types pydantic knows become what
  pydantic makes of them (ISO text, strings); anything else becomes `str(value)`.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import dataclasses
import enum
import importlib
import traceback
from collections.abc import Iterator, Mapping, Sequence, Set
from typing import Any

import pydantic_core
from pydantic import BaseModel

__all__ = [
    "CIRCULAR",
    "MAX_DEPTH",
    "OMITTED",
    "TOO_DEEP",
    "clean_text",
    "copy_message",
    "exception_text",
    "group_members",
    "safe_str",
    "to_jsonable",
    "tool_result_text",
]

MAX_DEPTH = 100
"""Levels of nesting kept; a deeper container becomes `TOO_DEEP`."""
CIRCULAR = "[circular reference]"
TOO_DEEP = f"[nested deeper than {MAX_DEPTH} levels]"
OMITTED = "[omitted: the value is too large]"

_MAX_NODES = 250_000
_MAX_CHARS = 10_000_000
_MAX_INT_BITS = 13_000  # about 3,900 digits; Python refuses to print more than 4,300
_MESSAGE_LIMIT = 2000
_PLAIN = frozenset({type(None), bool, float})


def _group_type() -> type[BaseException] | None:
    found: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)
    if found is None:  # Python 3.10: the backport that anyio depends on there
        with contextlib.suppress(ImportError):
            found = importlib.import_module("exceptiongroup").BaseExceptionGroup
    return found


_GROUP = _group_type()


def to_jsonable(value: Any, *, tracebacks: bool = False) -> Any:
    """Plain JSON-ready data for `value` (see the module docstring); never raises.

    `tracebacks=True` adds each exception's formatted traceback under `"traceback"`.
    """
    return _Walk(tracebacks).value(value, 0)


def tool_result_text(value: Any) -> str:
    """The text a model receives for what a tool returned; never raises.

    A str is sent as it is and bytes as their UTF-8 text; anything else as compact JSON
    of `to_jsonable(value)`. Lone surrogates (undecodable file names, say) become U+FFFD,
    so the text can always be sent.
    """
    if isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8", "replace")
    else:
        try:
            data = to_jsonable(value)
            text = pydantic_core.to_json(data).decode()
        except Exception:  # not expected: the data is plain, acyclic and shallow
            text = safe_str(value)
    return clean_text(text)


def safe_str(value: object) -> str:
    """`str(value)`, or the default repr when `__str__` fails or returns a non-str."""
    try:
        text = str(value)
    except Exception:
        return object.__repr__(value)
    return str.__str__(text)


def exception_text(exc: BaseException, limit: int = _MESSAGE_LIMIT) -> str:
    """`Type: message` (or just `Type`), at most about `limit` characters; never raises.

    An exception group lists its first few sub-exceptions, one level deep.
    """
    text = _one_exception(exc)
    members = group_members(exc)
    if members is not None:
        inner = [_one_exception(sub) for sub in members[:5]]
        more = len(members) - len(inner)
        text += ": " + "; ".join(inner) + (f"; and {more} more" if more > 0 else "")
    return text if len(text) <= limit else text[:limit] + "..."


def group_members(exc: BaseException) -> tuple[BaseException, ...] | None:
    """The exceptions an exception group holds, or None for any other exception."""
    if _GROUP is None or not isinstance(exc, _GROUP):
        return None
    return tuple(getattr(exc, "exceptions", ()))


def _one_exception(exc: BaseException) -> str:
    name = type(exc).__name__
    try:
        message = str(exc)
    except BaseException:  # whatever its __str__ raises, describing it must not fail
        return f"{name} (its message could not be read)"
    message = str.__str__(message)[: _MESSAGE_LIMIT + 1]
    return f"{name}: {message}" if message else name


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD, so it can be encoded and sent."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A valid pair written as two code points is joined; a lone one becomes U+FFFD.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class _Walk:
    """One conversion's state: the containers on the current path and what is left."""

    __slots__ = ("chars", "cut", "nodes", "path", "tracebacks")

    def __init__(self, tracebacks: bool) -> None:
        self.tracebacks = tracebacks
        self.path: set[int] = set()
        self.nodes = _MAX_NODES
        self.chars = _MAX_CHARS
        self.cut = False  # whether a marker replaced something too deep or too large

    def spent(self) -> bool:
        if self.nodes <= 0 or self.chars < 0:
            self.cut = True
            return True
        return False

    def value(self, value: Any, depth: int) -> Any:
        self.nodes -= 1
        kind = type(value)
        if kind is str:
            self.chars -= len(value)
            if self.chars >= 0:
                return value if value.isascii() else clean_text(value)
            self.cut = True
            return OMITTED
        if kind in _PLAIN:
            return value
        if kind is int:
            return _int(value)
        if self.spent():
            return OMITTED
        if kind is dict or kind is list or kind is tuple:
            return self._enter(value, depth)
        try:
            return self._other(value, depth)
        except Exception:  # a broken __iter__, __eq__, model serializer, ...
            return self._leaf_text(value)

    def _other(self, value: Any, depth: int) -> Any:
        if isinstance(value, enum.Enum):
            return self.value(value.value, depth + 1)
        if isinstance(value, str):
            return self.value(str.__str__(value), depth)
        if isinstance(value, int):
            return _int(int.__int__(value))
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.value(bytes(value).decode("utf-8", "replace"), depth)
        if isinstance(value, BaseException):
            return self._exception(value)
        is_dataclass = dataclasses.is_dataclass(value) and not isinstance(value, type)
        if is_dataclass or isinstance(value, (Mapping, Sequence, Set, BaseModel)):
            return self._enter(value, depth)
        if isinstance(value, Iterator):
            return self._leaf_text(value)  # never consumed: it may be endless
        return self._leaf(value, depth)

    def _enter(self, value: Any, depth: int) -> Any:
        if depth >= MAX_DEPTH:
            self.cut = True
            return TOO_DEEP
        ident = id(value)
        if ident in self.path:
            return CIRCULAR
        self.path.add(ident)
        try:
            return self._container(value, depth + 1)
        except Exception:  # a broken __iter__, __getitem__, model serializer, ...
            return self._leaf_text(value)
        finally:
            self.path.discard(ident)

    def _container(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is dict:
            return self._mapping(value, depth)
        if kind is list or kind is tuple:
            return self._items(value, depth)
        if isinstance(value, BaseModel):
            return self.value(_model_data(value, depth), depth - 1)
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if dataclasses.is_dataclass(value):
            fields = dataclasses.fields(value)
            return self._mapping({f.name: getattr(value, f.name) for f in fields}, depth)
        items = self._items(value, depth)
        if isinstance(value, Set):
            with contextlib.suppress(TypeError):
                items.sort()  # plain data only: no user code runs in the comparisons
        return items

    # The loops below take plain numbers, bools and None without a call: most data is
    # made of them, and a call per item costs more than the rest of the work.

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, item in value.items():
            if self.nodes <= 0 or self.chars < 0:
                self.cut = True
                data[OMITTED] = OMITTED
                break
            if type(key) is not str or not key.isascii():
                key = self._key(key, depth)
            if type(item) in _PLAIN:
                self.nodes -= 1
                data[key] = item
            else:
                data[key] = self.value(item, depth)
        return data

    def _items(self, value: Any, depth: int) -> list[Any]:
        items: list[Any] = []
        for item in value:
            if self.nodes <= 0 or self.chars < 0:
                self.cut = True
                items.append(OMITTED)
                break
            if type(item) in _PLAIN:
                self.nodes -= 1
                items.append(item)
            else:
                items.append(self.value(item, depth))
        return items

    def _key(self, key: Any, depth: int) -> str:
        if type(key) is str:
            return clean_text(key)
        converted = self.value(key, depth)
        if isinstance(converted, str):
            return converted
        return pydantic_core.to_json(converted).decode()

    def _exception(self, exc: BaseException) -> dict[str, str]:
        name, _, message = exception_text(exc).partition(": ")
        data = {"type": name, "message": message}
        if self.tracebacks:
            try:
                data["traceback"] = "".join(traceback.format_exception(exc))
            except Exception:
                data["traceback"] = ""
        return data

    def _leaf(self, value: Any, depth: int) -> Any:
        try:
            data = pydantic_core.to_jsonable_python(value)
        except Exception:  # a type pydantic does not know
            return self._leaf_text(value)
        if isinstance(data, (dict, list)):
            return self.value(data, depth + 1) if depth < MAX_DEPTH else TOO_DEEP
        return self.value(data, depth)

    def _leaf_text(self, value: Any) -> str:
        return self.value(safe_str(value), 0)  # type: ignore[no-any-return]


def _model_data(model: BaseModel, depth: int) -> Any:
    """The model's own JSON dump when its data is within bounds, else its fields.

    pydantic's dump follows the data wherever it leads (shared references again and
    again), so the data is first walked here, within the same bounds.
    """
    fields = {name: getattr(model, name, None) for name in type(model).model_fields}
    look = _Walk(tracebacks=False)
    look.value([fields, model.model_extra], depth)
    if look.cut:
        return fields
    try:
        return model.model_dump(mode="json")
    except Exception:  # a cycle in the data, a failing serializer
        return fields


def _int(value: int) -> int | str:
    if value.bit_length() <= _MAX_INT_BITS:
        return value
    return f"[an integer of {value.bit_length()} bits]"


def copy_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a message: dicts and lists copied, other values deep-copied.

    Plain containers are copied by hand (a fifth of what `copy.deepcopy` costs); a part
    nested past `MAX_DEPTH` levels, or one `deepcopy` cannot copy, is converted as for
    a tool's result instead.
    """
    return {key: _copy_part(value, 1) for key, value in message.items()}


def _copy_part(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str or kind in _PLAIN or kind is int:
        return value
    if depth < MAX_DEPTH:
        if kind is dict:
            return {key: _copy_part(item, depth + 1) for key, item in value.items()}
        if kind is list or kind is tuple:
            return [_copy_part(item, depth + 1) for item in value]
    try:
        return copy.deepcopy(value)
    except Exception:  # RecursionError, an object that refuses to be copied
        return to_jsonable(value)
