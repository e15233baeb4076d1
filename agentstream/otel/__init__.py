"""OpenTelemetry traces of agent runs (the `agentstream[otel]` extra).

```python
from agentstream import Agent
from agentstream.otel import Tracing

agent = Agent(client=client, model="gpt-4o-mini", tools=[...], observers=[Tracing()])
```

Spans go to the global tracer provider (or the one given as `tracer_provider`); set one
up with the OpenTelemetry SDK and the exporter of your choice. Message contents are
recorded only with `Tracing(include_content=True)`.
"""

from __future__ import annotations

# Without the extra, one ImportError that names the line to run, not a traceback into
# the integration's modules. Only the extra's own packages missing are caught.
try:
    import opentelemetry as _opentelemetry  # noqa: F401
except ModuleNotFoundError as _missing:
    if (_missing.name or "").partition(".")[0] not in ("opentelemetry",):
        raise
    raise ImportError(
        f"agentstream.otel needs the `otel` extra ({_missing.name} is not installed): "
        "pip install 'agentstream[otel]'",
        name=_missing.name,
    ) from None

from ._tracing import Tracing as Tracing

__all__ = ["Tracing"]
