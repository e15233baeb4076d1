"""The loop's seams for usage limits and fallback models: each a no-op without them.

A run gets a `Budget` only with usage limits or prices, and a `Route` only with fallback
models; the loop calls these with None otherwise, which costs one test per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import openai

from .._events import Event, FallbackUsed
from .._exceptions import RunError
from ..state._state import RunState
from ._budget import Budget
from ._config import RunConfig, RunStart
from ._route import Route
from ._step_state import StepState

__all__ = ["fall_back", "masking", "result_fields", "spending", "spent"]


def spending(
    config: RunConfig, start: RunStart, state: RunState, client: openai.AsyncOpenAI
) -> tuple[Budget | None, Route | None]:
    """The run's budget (with limits or prices) and route (with fallback models)."""
    limits = start.limits or config.limits
    budget = None
    if limits is not None or config.prices is not None:
        budget = Budget(limits, config.prices, state, config.model)
    route = None
    if config.fallback and config.breaker is not None:
        route = Route(config, client, config.fallback, config.breaker)
    return budget, route


def spent(
    budget: Budget | None, route: Route | None, state: RunState, step: StepState
) -> Iterable[Event]:
    """A whole response: its model answered; its cost, and the limits it may pass.

    A plain function (no generator made) when the run has neither: a step pays a call.
    """
    if route is not None:
        route.answered()
    return () if budget is None else budget.after_response(state, step)


def fall_back(route: Route | None, step: StepState, error: RunError) -> FallbackUsed | None:
    """After a model gave up on a step: the next model taking over, if one may."""
    return None if route is None else route.fall_back(step, error)


def masking(route: Route | None, secret: str | None) -> tuple[str | None, int]:
    """The key to mask in the current model's errors, and the failed attempts of the
    step before that model took over (its retries count from there)."""
    return (secret, 0) if route is None else (route.current.secret, route.tried)


def result_fields(budget: Budget | None) -> dict[str, Any]:
    """What a run's result says of its spending: its cost, and the limit that stopped it."""
    if budget is None:
        return {}
    return {"cost": budget.cost if budget.priced else None, "usage_limit": budget.reached}
