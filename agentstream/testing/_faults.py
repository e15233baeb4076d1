"""Faults and dialects asked for per request, in HTTP headers (no I/O).

The syntax is described in `_offline`'s docstring (`x-agentstream-fault: status=429`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, get_args

from ._reply import Dialect, Fault

__all__ = ["DIALECT_HEADER", "FAULT_HEADER", "header_options", "parse_fault"]

FAULT_HEADER = "x-agentstream-fault"
DIALECT_HEADER = "x-agentstream-dialect"

_FIELDS: dict[str, type] = {
    "status": int,
    "retry_after": float,
    "drop_after": int,
    "malformed_after": int,
    "error_after": int,
    "stall_after": int,
    "stall_seconds": float,
    "no_done": bool,
}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_fault(value: str) -> Fault:
    """A `Fault` from the `x-agentstream-fault` syntax: `status=429,retry_after=1`.

    Raises `ValueError` saying what is wrong.
    """
    head, found, message = value.partition("message=")
    if found and head.strip() and not head.rstrip().endswith(","):
        raise ValueError("'message=' must be the last field")
    fields: dict[str, Any] = {"message": message.strip()} if found else {}
    for item in head.split(","):
        name, equals, raw = (part.strip() for part in item.partition("="))
        if not name:
            continue
        kind = _FIELDS.get(name)
        if kind is None:
            known = ", ".join([*_FIELDS, "message"])
            raise ValueError(f"unknown field {name!r}; the fields are {known}")
        if name in fields:
            raise ValueError(f"{name!r} is given twice")
        fields[name] = _field_value(name, kind, raw if equals else None)
    if not fields:
        raise ValueError("no fault fields given, e.g. 'status=500' or 'drop_after=3'")
    return Fault(**fields)


def _field_value(name: str, kind: type, raw: str | None) -> Any:
    if kind is bool:
        if raw is None or raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(f"{name} takes true or false, not {raw!r}")
    if raw is None:
        raise ValueError(f"{name} needs a value ({name}=...)")
    try:
        number = kind(raw)
    except ValueError:
        raise ValueError(f"{name} takes a{'n integer' if kind is int else ' number'}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite")
    return number


def header_options(headers: Mapping[str, str]) -> tuple[Dialect, Fault | None]:
    """The dialect and fault a request asks for in its headers; `ValueError` if unreadable."""
    dialect = headers.get(DIALECT_HEADER, "openai").strip().lower()
    dialects = get_args(Dialect)
    if dialect not in dialects:
        raise ValueError(f"{DIALECT_HEADER} must be one of {', '.join(dialects)}, not {dialect!r}")
    raw = headers.get(FAULT_HEADER)
    try:
        fault = parse_fault(raw) if raw is not None and raw.strip() else None
    except ValueError as exc:
        raise ValueError(f"cannot read the {FAULT_HEADER} header {raw!r}: {exc}") from None
    return dialect, fault  # type: ignore[return-value]
