"""Test agents against a scripted model that speaks real Chat Completions SSE.

```python
from agentstream.testing import Reply, ScriptedModel, ToolCall

model = ScriptedModel([
    Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
    Reply("It is sunny in Paris."),
])
async with model.async_client() as client:  # a real openai.AsyncOpenAI
    ...
model.requests  # every request the model received
```
"""

from __future__ import annotations

from ._model import ScriptedModel as ScriptedModel
from ._offline import OFFLINE_MODEL_NAME as OFFLINE_MODEL_NAME
from ._offline import offline_model as offline_model
from ._offline import offline_policy as offline_policy
from ._offline import serve_model as serve_model
from ._reply import Dialect as Dialect
from ._reply import Fault as Fault
from ._reply import Reply as Reply
from ._reply import ToolCall as ToolCall
from ._request import ModelRequest as ModelRequest
from ._request import Policy as Policy
from ._server import serve as serve

# Plain sorted order, as the package's other `__all__` (a test checks it), not isort's.
__all__ = [  # noqa: RUF022
    "Dialect",
    "Fault",
    "ModelRequest",
    "OFFLINE_MODEL_NAME",
    "Policy",
    "Reply",
    "ScriptedModel",
    "ToolCall",
    "offline_model",
    "offline_policy",
    "serve",
    "serve_model",
]
