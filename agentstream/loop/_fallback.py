"""Fallback models: when a model gives up on a step before showing any of it, the next
one answers the step; a circuit breaker skips a model that keeps failing for a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import openai

from .._exceptions import ModelError, RunError, RunTimeout, SetupError
from ._retries import retryable

__all__ = ["CircuitBreaker", "Fallback", "FallbackLike", "fallbacks", "falls_back"]


@dataclass(frozen=True, slots=True)
class Fallback:
    """A model to fall back on: a name on the agent's client, or on a client of its own."""

    model: str
    client: openai.AsyncOpenAI | None = None
    """Its own client (an instance, which the agent does not close); None: the agent's."""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise SetupError("a fallback model needs a name (a non-empty string)")
        if self.client is not None and not isinstance(self.client, openai.AsyncOpenAI):
            raise SetupError(
                "a fallback's client must be an openai.AsyncOpenAI instance, "
                f"not {type(self.client).__name__}"
            )


FallbackLike = str | tuple[openai.AsyncOpenAI, str] | Fallback
"""What `Agent(fallback=[...])` holds: model names, `(client, model)` pairs, `Fallback`s."""


def fallbacks(given: Iterable[FallbackLike] | FallbackLike) -> tuple[Fallback, ...]:
    """`given` as `Fallback`s; raises `SetupError` for anything else."""
    if isinstance(given, (str, Fallback)) or _is_pair(given):
        given = [given]  # type: ignore[list-item]  # one fallback, given alone
    if not isinstance(given, Iterable):
        raise SetupError(f"fallback takes a list of models, not {given!r:.60}")
    chain: list[Fallback] = []
    for item in given:
        if isinstance(item, Fallback):
            chain.append(item)
        elif isinstance(item, str):
            chain.append(Fallback(item))
        elif isinstance(item, tuple) and len(item) == 2:
            client, model = item
            chain.append(Fallback(model, client))
        else:
            raise SetupError(
                "fallback holds model names, (client, model) pairs or Fallback values, "
                f"not {item!r:.80}"
            )
    return tuple(chain)


def _is_pair(given: Any) -> bool:
    return isinstance(given, tuple) and len(given) == 2 and isinstance(given[0], openai.AsyncOpenAI)


class CircuitBreaker:
    """Skips a model for `cooldown` seconds after `failures` steps in a row that it gave up on.

    One per agent by default (shared by its runs, and by the copies `Agent.replace`
    makes); give the same one to several agents to share what they learn. After the
    cooldown the model is tried again: an answer closes its circuit, a failure opens it
    for another cooldown. When every model is skipped, each is tried again in order.
    `clock` (seconds, monotonic) is for tests.
    """

    def __init__(
        self,
        failures: int = 2,
        cooldown: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise SetupError(f"CircuitBreaker failures must be an integer >= 1, not {failures!r}")
        if not cooldown >= 0:
            raise SetupError(f"CircuitBreaker cooldown must be >= 0, not {cooldown!r}")
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()  # runs of one agent may share it from several threads
        self._failed: dict[Any, int] = {}  # failures in a row, by (client, model)
        self._open_until: dict[Any, float] = {}

    def __repr__(self) -> str:
        return f"CircuitBreaker(failures={self.failures}, cooldown={self.cooldown})"

    def is_open(self, key: Any) -> bool:
        """Whether the model is being skipped now."""
        with self._lock:
            until = self._open_until.get(key)
            return until is not None and self._clock() < until

    def failed(self, key: Any) -> None:
        """The model gave up on a step."""
        with self._lock:
            count = self._failed.get(key, 0) + 1
            self._failed[key] = count
            if count >= self.failures:
                self._open_until[key] = self._clock() + self.cooldown

    def answered(self, key: Any) -> None:
        """The model answered a step: its circuit closes."""
        with self._lock:
            self._failed.pop(key, None)
            self._open_until.pop(key, None)


def falls_back(error: RunError) -> bool:
    """Whether another model could answer where this one failed: a failure of the server
    or the way to it (5xx, 429, a timeout, no connection, a broken stream), not a
    request it refused as wrong."""
    if isinstance(error, RunTimeout):
        return error.limit != "run"
    if isinstance(error, ModelError) and error.status_code == 429:
        return True  # also when it asks to wait longer than the retries would
    return retryable(error)
