"""Prices from the `genai-prices` package's table (the `agentstream[prices]` extra).

```python
from agentstream import Agent, UsageLimits
from agentstream.prices import GenaiPrices

agent = Agent(model="gpt-4o-mini", prices=GenaiPrices(), limits=UsageLimits(cost=0.50))
```
"""

from __future__ import annotations

# Without the extra, one ImportError that names the line to run, not a traceback into
# the integration's modules. Only the extra's own packages missing are caught.
try:
    import genai_prices as _genai_prices  # noqa: F401
except ModuleNotFoundError as _missing:
    if (_missing.name or "").partition(".")[0] not in ("genai_prices",):
        raise
    raise ImportError(
        f"agentstream.prices needs the `prices` extra ({_missing.name} is not installed): "
        "pip install 'agentstream[prices]'",
        name=_missing.name,
    ) from None

from ._genai import GenaiPrices as GenaiPrices

__all__ = ["GenaiPrices"]
