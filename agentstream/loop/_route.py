"""Which model answers each attempt of a run's steps, with the agent's fallbacks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import openai

from .._events import FallbackUsed
from .._exceptions import RunError
from .._redact import secret_of
from ._config import RunConfig
from ._fallback import CircuitBreaker, Fallback, falls_back
from ._step_state import StepState

__all__ = ["Route"]


@dataclass(slots=True)
class _Model:
    """One model of the chain, ready to send to."""

    config: RunConfig
    client: openai.AsyncOpenAI
    secret: str | None
    key: Any


class Route:
    """Which model answers each attempt of a run's steps, with the agent's fallbacks."""

    __slots__ = ("_at", "_breaker", "_chain", "_skipping", "_step", "tried")

    def __init__(
        self,
        config: RunConfig,
        client: openai.AsyncOpenAI,
        chain: tuple[Fallback, ...],
        breaker: CircuitBreaker,
    ) -> None:
        given = config.client
        models = [_Model(config, client, secret_of(client.api_key), (given, config.model))]
        for fallback in chain:
            own = fallback.client
            models.append(
                _Model(
                    dataclasses.replace(config, model=fallback.model),
                    client if own is None else own,
                    secret_of((client if own is None else own).api_key),
                    (given if own is None else own, fallback.model),
                )
            )
        self._chain = models
        self._breaker = breaker
        self._at = 0  # the model answering the step under way
        self._step = 0
        self._skipping = True  # False while every model's circuit is open: try them all
        self.tried = 0
        """Failed attempts of the step before its current model took over (its retries
        count from there)."""

    @property
    def current(self) -> _Model:
        return self._chain[self._at]

    def attempt(self, step: StepState) -> tuple[RunConfig, openai.AsyncOpenAI]:
        """The settings and client of this attempt at `step`: at a new step, those of the
        first model whose circuit is closed (of the first model if none is)."""
        if step.number != self._step:
            self._step, self.tried = step.number, 0
            closed = [at for at, model in enumerate(self._chain) if not self._is_open(model)]
            self._skipping = bool(closed)
            self._at = closed[0] if closed else 0
        model = self.current
        step.model = model.config.model
        return model.config, model.client

    def fall_back(self, step: StepState, error: RunError) -> FallbackUsed | None:
        """After the current model gave up on `step`: the event of the next model taking
        over, or None (the step fails) if none may.

        Only a step of which nothing was shown falls back (no text, reasoning or call
        of its last attempt reached the caller): another model's answer would differ.
        """
        if not falls_back(error):
            return None
        failed = self.current
        self._breaker.failed(failed.key)
        if step.first_token is not None:
            return None
        following = [
            at for at in range(self._at + 1, len(self._chain))
            if not (self._skipping and self._is_open(self._chain[at]))
        ]  # fmt: skip
        if not following:
            return None
        self._at = following[0]
        self.tried = len(step.failures)
        return FallbackUsed(step.number, failed.config.model, self.current.config.model, error)

    def _is_open(self, model: _Model) -> bool:
        return self._breaker.is_open(model.key)

    def answered(self) -> None:
        """The current model answered its step."""
        self._breaker.answered(self.current.key)
