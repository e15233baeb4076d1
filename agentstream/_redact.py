"""Keeping the API key out of what a run reports, should a server echo it back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._exceptions import ModelError, RunError, StreamError
from ._json import MAX_DEPTH

__all__ = ["MASK", "clip", "redact", "redact_error", "secret_of"]

MASK = "***"
_TOO_DEEP = f"[nested more than {MAX_DEPTH} levels deep]"
_SHORTEST = 8  # placeholder keys ("x", "unused", "ollama") are not secrets worth masking


def secret_of(api_key: object) -> str | None:
    """The key to mask, or None when there is nothing worth masking."""
    return api_key if isinstance(api_key, str) and len(api_key) >= _SHORTEST else None


def clip(text: str, limit: int = 200, secret: str | None = None) -> str:
    """`text` for a message: `secret` masked in the whole of it first, then cut to `limit`.

    Every place that shortens text from a server goes through here, so that a secret
    straddling the cut can never be left half shown.
    """
    if secret is not None and secret in text:
        text = text.replace(secret, MASK)
    return text if len(text) <= limit else text[:limit] + "..."


def redact(value: Any, secret: str, _depth: int = 0) -> Any:
    """`value` (text or JSON-like data) with every occurrence of `secret` masked.

    Data nested deeper than JSON is read (`MAX_DEPTH`) is replaced by a note rather than
    walked, so a hostile body cannot exhaust the stack here.
    """
    if isinstance(value, str):
        return value.replace(secret, MASK) if secret in value else value
    if _depth > MAX_DEPTH and isinstance(value, (Mapping, list, tuple)):
        return _TOO_DEEP
    if isinstance(value, Mapping):
        return {key: redact(item, secret, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, secret, _depth + 1) for item in value]
    return value


def redact_error(error: RunError, secret: str) -> RunError:
    """Mask `secret` in a run error's message and body, in place, and return it.

    The exception it was raised from (the SDK's, which quotes the server) is dropped
    from the chain when it holds the secret, so tracebacks cannot show it either.
    """
    leaked = any(secret in str(cause) for cause in _chain(error))
    if isinstance(error, (ModelError, StreamError)):
        if _mentions(error.body, secret, 0):
            error.body, leaked = redact(error.body, secret), True
        if secret in error.message:
            error.message = error.message.replace(secret, MASK)
    if leaked:
        error.args = tuple(redact(arg, secret) for arg in error.args)
        error.__cause__ = None
        error.__suppress_context__ = True
    return error


def _mentions(value: Any, secret: str, depth: int) -> bool:
    """Whether `secret` is in `value` (data nested past `MAX_DEPTH` counts as holding it)."""
    if isinstance(value, str):
        return secret in value
    if isinstance(value, (Mapping, list, tuple)):
        if depth > MAX_DEPTH:
            return True
        items = value.values() if isinstance(value, Mapping) else value
        return any(_mentions(item, secret, depth + 1) for item in items)
    return False


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
