"""Keeping the API key out of what a run reports, should a server echo it back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._exceptions import ModelError, RunError, StreamError

__all__ = ["MASK", "redact", "redact_error", "secret_of"]

MASK = "***"
_SHORTEST = 8  # placeholder keys ("x", "unused", "ollama") are not secrets worth masking


def secret_of(api_key: object) -> str | None:
    """The key to mask, or None when there is nothing worth masking."""
    return api_key if isinstance(api_key, str) and len(api_key) >= _SHORTEST else None


def redact(value: Any, secret: str) -> Any:
    """`value` (text or JSON-like data) with every occurrence of `secret` masked."""
    if isinstance(value, str):
        return value.replace(secret, MASK) if secret in value else value
    if isinstance(value, Mapping):
        return {key: redact(item, secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, secret) for item in value]
    return value


def redact_error(error: RunError, secret: str) -> RunError:
    """Mask `secret` in a run error's message and body, in place, and return it.

    The exception it was raised from (the SDK's, which quotes the server) is dropped
    from the chain when it holds the secret, so tracebacks cannot show it either.
    """
    leaked = any(secret in str(cause) for cause in _chain(error))
    if isinstance(error, (ModelError, StreamError)):
        body = redact(error.body, secret)
        if body != error.body:
            error.body, leaked = body, True
        if secret in error.message:
            error.message = error.message.replace(secret, MASK)
    if leaked:
        error.args = tuple(redact(arg, secret) for arg in error.args)
        error.__cause__ = None
        error.__suppress_context__ = True
    return error


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
