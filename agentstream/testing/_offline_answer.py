"""How the offline model words what a tool call did (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["INVALID", "describe_call", "join"]

INVALID = "Invalid tool call:"
"""How the agent loop starts the result of a call it rejected."""
_MAX_FACTS = 6
_MAX_TEXT = 160
_UNIT_KEYS = ("unit", "units", "currency")


def join(items: Sequence[str]) -> str:
    """`["a", "b", "c"]` -> `"a, b and c"`."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def describe_call(name: str, arguments: Any, result: str | None, *, invalid: bool) -> str:
    """One sentence naming the call's key arguments and the salient parts of its result."""
    if result is None:
        return f"{name} gave no result."
    if invalid:
        reason = result[len(INVALID) :].strip()
        return f"Sorry, I could not run {name}: {_clip(reason)}"
    label = _label(arguments)
    facts = _facts(_json(result), _scalars(arguments))
    lead = f"For {label}, {name}" if label else name
    return f"{lead} returned {facts}" + ("" if facts.endswith((".", "!", "?")) else ".")


def _label(arguments: Any) -> str:
    """`{"location": "Paris", "unit": "celsius"}` -> `"location Paris, unit celsius"`."""
    if not isinstance(arguments, Mapping):
        return _clip(str(arguments)) if arguments else ""
    parts: list[str] = []
    for key, value in arguments.items():
        if isinstance(value, Mapping):
            inner = _label(value)
            if inner:
                parts.append(inner)
        elif isinstance(value, list):
            parts.append(f"{len(value)} {_words(key)}")
        elif value is not None:
            parts.append(f"{_words(key)} {_clip(str(value))}")
    return ", ".join(parts[:4])


def _facts(value: Any, known: set[str]) -> str:
    if isinstance(value, Mapping):
        facts: list[str] = []
        for key, item in value.items():
            if len(facts) >= _MAX_FACTS:
                break
            if key in _UNIT_KEYS and facts and isinstance(item, str):
                facts[-1] += f" {item}"  # "temperature 17.0" + "celsius"
            elif _is_scalar(item):
                if str(item).casefold() not in known:
                    facts.append(f"{_words(key)} {_clip(str(item))}")
            elif isinstance(item, list) and item:
                facts.append(f"{_words(key)} {_list(item)}")
        if not facts:
            return _clip(json.dumps(value))
        # Facts that hold commas themselves read better apart.
        return ("; " if any("," in fact for fact in facts) else ", ").join(facts)
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}: {_list(value)}"
    return _clip(str(value))


def _list(items: list[Any]) -> str:
    shown = [_clip(str(i)) if _is_scalar(i) else _clip(json.dumps(i)) for i in items[:3]]
    more = len(items) - len(shown)
    return join(shown) + (f" (and {more} more)" if more else "")


def _scalars(arguments: Any) -> set[str]:
    """The argument values, to avoid repeating them back ("location Paris ... Paris")."""
    if isinstance(arguments, Mapping):
        return {s for v in arguments.values() for s in _scalars(v)}
    if isinstance(arguments, list):
        return {s for v in arguments for s in _scalars(v)}
    return {str(arguments).casefold()} if _is_scalar(arguments) else set()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _words(key: str) -> str:
    return key.replace("_", " ")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
