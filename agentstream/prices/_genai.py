"""`GenaiPrices`: a price table (`agentstream.PriceTable`) read from `genai-prices`."""

from __future__ import annotations

import genai_prices

from agentstream import Usage

__all__ = ["GenaiPrices"]


class GenaiPrices:
    """Prices of well-known models from the `genai-prices` package's table.

    Models are matched by the name the run asked for. `provider` (`"openai"`,
    `"anthropic"`, ...) picks the provider's prices where several sell the same
    model; without it the table guesses from the name. A model the table does not
    know has no price (a run with a cost limit then stops with a `SetupError`).
    The table is the snapshot shipped with the package: nothing is fetched.
    """

    __slots__ = ("provider",)

    def __init__(self, provider: str | None = None) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"GenaiPrices(provider={self.provider!r})"

    def cost(self, model: str, usage: Usage) -> float | None:
        """The cost of `usage` on `model` in USD, or None if the table has no price."""
        counted = genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=min(usage.cached_tokens, usage.prompt_tokens),
        )
        try:
            price = genai_prices.calc_price(counted, model, provider_id=self.provider)
        except LookupError:
            return None
        return float(price.total_price)
