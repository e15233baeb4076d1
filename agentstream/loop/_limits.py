"""Usage limits: the most tokens, requests, tool calls and USD a run may use."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal, get_args

from .._exceptions import SetupError

__all__ = ["LimitName", "UsageLimits"]

LimitName = Literal[
    "input_tokens", "output_tokens", "total_tokens", "requests", "tool_calls", "cost"
]
"""The name of a usage limit (a field of `UsageLimits`)."""

_LIMITS: tuple[LimitName, ...] = get_args(LimitName)


@dataclass(frozen=True, slots=True)
class UsageLimits:
    """The most a run may use; None leaves a measure unlimited.

    Tokens are as the server reports them, summed over the run's responses. Each limit
    is checked before a request (with an estimate of its input tokens) and after each
    response; the run then stops with `stop_reason="usage_limit"` (see `RunResult.usage_limit`).
    """

    input_tokens: int | None = None
    """Input (prompt) tokens of the whole run."""
    output_tokens: int | None = None
    """Output tokens of the whole run (reasoning included)."""
    total_tokens: int | None = None
    """Input and output tokens of the whole run."""
    requests: int | None = None
    """Responses asked of the model (one per step; a retried step counts once)."""
    tool_calls: int | None = None
    """Tool calls run; a response asking for more than are left runs none of them."""
    cost: float | None = None
    """USD, priced with the agent's `prices` (required with this limit)."""

    def __post_init__(self) -> None:
        for name in _LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "cost":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SetupError("UsageLimits.cost must be a number of USD")
                if not (math.isfinite(value) and value >= 0):
                    raise SetupError(f"UsageLimits.cost must be >= 0, not {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SetupError(f"UsageLimits.{name} must be an integer >= 0, not {value!r}")

    @property
    def any_set(self) -> bool:
        """Whether any measure is limited."""
        return any(getattr(self, f.name) is not None for f in fields(self))
