"""When a failed step is tried again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .._exceptions import ModelError, RunError, RunTimeout, StreamError

__all__ = ["Retries", "retryable"]

# Statuses that say "not now" rather than "not this request": timeouts, conflicts, rate
# limits and the server's own failures. 4xx otherwise means the request is wrong, and
# sending it again would only fail again.
_RETRY_STATUSES = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class Retries:
    """How a run tries a failed step again.

    A step is tried again when its request fails before any output (connection
    refused, 408/409/429/5xx, no first chunk in time) and when its stream breaks after
    some output (dropped, stalled past the idle limit, cut short, malformed or carrying
    an error payload). Whatever the broken attempt streamed is discarded and reported as
    retracted; its tool calls never run.

    While retries are on, the `openai` client's own retries are turned off for the run's
    requests, so no request is retried twice over. `Retries(max_retries=0)` turns
    agentstream's retries off and leaves the client's as they are.
    """

    max_retries: int = 2
    """Further attempts of one step after its first."""
    budget: int | None = 8
    """Further attempts in the whole run, over all its steps; None for no run-wide cap."""
    backoff: float = 0.5
    """The wait before the first retry; it doubles with each retry of the same step."""
    max_backoff: float = 8.0
    """The longest wait between attempts, unless the server asks for longer."""
    max_retry_after: float = 60.0
    """The longest `Retry-After` honoured; a server asking for more is not retried."""

    def __post_init__(self) -> None:
        for name in ("max_retries", "budget"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"Retries.{name} must be an integer >= 0, not {value!r}")
        for name in ("backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects nan
                raise ValueError(f"Retries.{name} must be >= 0, not {value!r}")

    @property
    def enabled(self) -> bool:
        """Whether any step may be tried again."""
        return self.max_retries > 0 and self.budget != 0

    def delay(self, error: RunError, retry: int, rng: random.Random) -> float | None:
        """Seconds to wait before retry number `retry` (1-based) after `error`, or None.

        A server's `Retry-After` is honoured as given (up to `max_retry_after`);
        otherwise the wait grows exponentially, with jitter so that many runs failing
        together do not come back together.
        """
        if not retryable(error) or retry > self.max_retries:
            return None
        after = error.retry_after if isinstance(error, ModelError) else None
        if after is not None:
            return after if after <= self.max_retry_after else None
        ceiling: float = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        return ceiling * rng.uniform(0.5, 1.0)


def retryable(error: RunError) -> bool:
    """Whether another attempt of the same request could succeed."""
    if isinstance(error, ModelError):
        if error.should_retry is not None:
            return error.should_retry
        status = error.status_code
        return status is None or status in _RETRY_STATUSES or status >= 500
    if isinstance(error, RunTimeout):
        return error.limit in ("first_chunk", "idle")
    return isinstance(error, StreamError)
