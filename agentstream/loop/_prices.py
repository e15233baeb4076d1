"""What a step costs: the user's prices (USD per million tokens) or a price table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from .._exceptions import SetupError
from .._usage import Usage

__all__ = ["PriceTable", "Prices", "PricesLike", "cost_of", "price_table"]


@dataclass(frozen=True, slots=True)
class Prices:
    """What one model costs, in USD per million tokens."""

    input: float
    """Per million input (prompt) tokens."""
    output: float
    """Per million output tokens (reasoning tokens included, as servers bill them)."""
    cached_input: float | None = None
    """Per million input tokens served from the server's cache; None: as `input`."""

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input"):
            value = getattr(self, name)
            if value is None and name == "cached_input":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SetupError(f"Prices.{name} must be a number (USD per million tokens)")
            if not (math.isfinite(value) and value >= 0):
                raise SetupError(f"Prices.{name} must be a finite number >= 0, not {value!r}")

    def cost(self, usage: Usage) -> float:
        """The cost of `usage`, in USD."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        spent = (
            (usage.prompt_tokens - cached) * self.input
            + cached * cached_price
            + usage.completion_tokens * self.output
        )
        return spent / 1_000_000


@runtime_checkable
class PriceTable(Protocol):
    """Prices looked up by model name (`agentstream.prices.GenaiPrices` is one)."""

    def cost(self, model: str, usage: Usage) -> float | None:
        """The cost of `usage` on `model` in USD, or None if the table has no price for it."""
        ...


PricesLike: TypeAlias = Prices | Mapping[str, Prices] | PriceTable
"""What `Agent(prices=...)` takes: one price for every model of the agent, a price per
model name, or a price table."""


class _ByName:
    """A mapping of model names to `Prices`, as a price table."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, Prices]) -> None:
        self._prices = dict(prices)

    def cost(self, model: str, usage: Usage) -> float | None:
        prices = self._prices.get(model)
        return None if prices is None else prices.cost(usage)


class _Flat:
    """One price for every model."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Prices) -> None:
        self._prices = prices

    def cost(self, model: str, usage: Usage) -> float | None:
        return self._prices.cost(usage)


def price_table(prices: PricesLike | None) -> PriceTable | None:
    """`prices` as a table; raises `SetupError` for anything else."""
    if prices is None:
        return None
    if isinstance(prices, Prices):
        return _Flat(prices)
    if isinstance(prices, Mapping):
        for name, each in prices.items():
            if not isinstance(name, str) or not isinstance(each, Prices):
                raise SetupError("prices maps model names (str) to Prices(input=..., output=...)")
        return _ByName(prices)
    if isinstance(prices, PriceTable):
        return prices
    raise SetupError(
        "prices takes Prices(input=..., output=...), a mapping of model names to Prices, "
        f"or a price table with a cost(model, usage) method, not {type(prices).__name__}"
    )


def cost_of(table: PriceTable, model: str, usage: Usage) -> float | None:
    """The cost of `usage` on `model`, or None when the table has no price for it.

    A table that fails or answers something that is not a finite number >= 0 is a
    mistake in setup, reported as such rather than counted as free.
    """
    try:
        cost = table.cost(model, usage)
    except Exception as exc:
        raise SetupError(f"the price table failed for model {model!r}: {exc!r:.200}") from exc
    if cost is None:
        return None
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not cost >= 0:
        raise SetupError(f"the price table gave {cost!r:.40} for model {model!r}, not a cost")
    if not math.isfinite(cost):
        raise SetupError(f"the price table gave {cost!r} for model {model!r}, not a cost")
    return float(cost)
