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

from ._tracing import Tracing as Tracing

__all__ = ["Tracing"]
