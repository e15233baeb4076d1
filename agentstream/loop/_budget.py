"""A run's spending: it prices each response, checks the usage limits before each
request (with an estimate of the request's input) and after each response, and says
which limit stopped the run. A run without limits or prices has none and pays nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .._events import UsageLimitReached
from .._exceptions import SetupError
from .._usage import Usage
from ..state._state import RunState
from ._config import RunConfig
from ._limits import LimitName, UsageLimits
from ._prices import PriceTable, cost_of
from ._step_state import StepState

__all__ = ["Budget"]

# Characters per token when a request's input is estimated before it is sent: about
# right for English and JSON with the common tokenizers, and on the safe side for code.
_CHARS_PER_TOKEN = 4


class Budget:
    """One run's spending: its cost so far, and its limits checked around each request."""

    __slots__ = ("_known", "_limits", "_model", "_prices", "_tools_tokens", "cost", "reached")

    def __init__(
        self, limits: UsageLimits | None, prices: PriceTable | None, state: RunState, model: str
    ) -> None:
        self._model = model  # the agent's; a step answered by a fallback names its own
        self._limits = limits if limits is not None and limits.any_set else None
        self._prices = prices
        # Cost so far: a resumed run starts from its saved steps' (the pending one's too).
        saved = [*state.steps, *([state.pending.info] if state.pending is not None else [])]
        self.cost = sum(info.cost for info in saved if info.cost is not None)
        self.reached: LimitName | None = None
        """The limit that stopped the run, once one has."""
        # (messages covered, tokens): the last response's input and output tokens cover
        # the conversation up to its assistant message; only what follows is estimated.
        self._known: tuple[int, int] | None = None
        self._tools_tokens: int | None = None

    @property
    def priced(self) -> bool:
        """Whether the run has prices (and so a cost)."""
        return self._prices is not None

    def before_request(self, state: RunState, config: RunConfig) -> UsageLimitReached | None:
        """The limit the next request would pass, if any; it is then not sent.

        A saved step whose calls are still to run goes on: it sends nothing yet.
        """
        limits = self._limits
        if limits is None or state.pending is not None:
            return None
        model, tools = config.model, config.catalog.definitions
        usage = state.usage
        if limits.requests is not None and len(state.steps) + 1 > limits.requests:
            return self._reach(state.step, "requests", len(state.steps) + 1, limits.requests)
        if limits.input_tokens is None and limits.total_tokens is None and limits.cost is None:
            return None
        estimate = self._estimate(state, tools)
        if limits.input_tokens is not None:
            value = usage.prompt_tokens + estimate
            if value > limits.input_tokens:
                return self._reach(state.step, "input_tokens", value, limits.input_tokens)
        if limits.total_tokens is not None:
            value = usage.total_tokens + estimate
            if value > limits.total_tokens:
                return self._reach(state.step, "total_tokens", value, limits.total_tokens)
        if limits.cost is not None:
            priced = self._price(model, Usage(prompt_tokens=estimate, total_tokens=estimate))
            if priced is not None and self.cost + priced > limits.cost:
                return self._reach(state.step, "cost", self.cost + priced, limits.cost)
        return None

    def after_response(self, state: RunState, step: StepState) -> Iterator[UsageLimitReached]:
        """Price the step's response; if the run now passes a limit and the response asks
        for tools, none of them runs and the run stops after this step."""
        usage = step.usage
        if usage is not None:
            # The next request's input is this one's, plus this response, plus what follows.
            self._known = (len(state.messages) + 1, usage.prompt_tokens + usage.completion_tokens)
            if self._prices is not None:
                step.cost = self._price(step.model or self._model, usage)
                if step.cost is not None:
                    self.cost += step.cost
        limits = self._limits
        if limits is None or step.message is None or not step.message.tool_calls:
            return
        if step.not_run is not None:
            return  # its calls will not run anyway
        passed = self._passed(state, limits, len(step.message.tool_calls))
        if passed is not None:
            name, value, limit = passed
            step.not_run = "usage_limit"
            yield self._reach(step.number, name, value, limit)

    def _passed(
        self, state: RunState, limits: UsageLimits, calls: int
    ) -> tuple[LimitName, float, float] | None:
        """The first limit the run has passed, with its value and the limit."""
        usage = state.usage
        measured: tuple[tuple[LimitName, float, float | None], ...] = (
            ("input_tokens", usage.prompt_tokens, limits.input_tokens),
            ("output_tokens", usage.completion_tokens, limits.output_tokens),
            ("total_tokens", usage.total_tokens, limits.total_tokens),
            ("cost", self.cost, limits.cost),
            ("tool_calls", state.calls_run + calls, limits.tool_calls),
        )
        for name, value, limit in measured:
            if limit is not None and value > limit:
                return name, value, limit
        return None

    def _reach(self, step: int, name: LimitName, value: float, limit: float) -> UsageLimitReached:
        self.reached = name
        return UsageLimitReached(step, name, value, limit)

    def _price(self, model: str, usage: Usage) -> float | None:
        if self._prices is None:
            return None
        cost = cost_of(self._prices, model, usage)
        if cost is None and self._limits is not None and self._limits.cost is not None:
            raise SetupError(
                f"the run has a cost limit and no price for model {model!r}: "
                "give its price in Agent(prices=...)"
            )
        return cost

    def _estimate(self, state: RunState, tools: Callable[[], Sequence[dict[str, Any]]]) -> int:
        """The input tokens of the next request: what the last response reported for the
        conversation it saw, and about one token per four characters for the rest."""
        messages = state.messages
        if self._known is not None and self._known[0] <= len(messages):
            start, tokens = self._known
        else:
            if self._tools_tokens is None:
                self._tools_tokens = _tokens(tools())
            start, tokens = 0, self._tools_tokens
        return tokens + _tokens(messages[start:])


def _tokens(data: Any) -> int:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return -(-len(text) // _CHARS_PER_TOKEN) if data else 0
