"""Tools from Model Context Protocol servers, for agentstream agents (`agentstream[mcp]`).

```python
from agentstream import Agent
from agentstream.mcp import MCPServerHTTP, MCPServerStdio

async with (
    MCPServerStdio("python", ["my_server.py"], prefix="files") as files,
    MCPServerHTTP("https://example.com/mcp", headers=auth, prefix="docs") as docs,
):
    agent = Agent(client=client, model=model, tools=[files, docs])
    result = await agent.run("...")
```

Each server is a live `Toolset`: the agent offers its current tools at every step, and
the list is read again when the server says it changed. Arguments are checked against
the server's input schema before a call is sent; the server's result (structured
content if any, else its text, with a note for images) goes back to the model, and an
error result, a server that went away or a call past `call_timeout` goes back as the
call's failure. Cancelling a run cancels its calls in flight (the server is told).
"""

from __future__ import annotations

# Without the extra, one ImportError that names the line to run, not a traceback into
# the integration's modules. Only the extra's own packages missing are caught.
try:
    import mcp as _mcp  # noqa: F401
except ModuleNotFoundError as _missing:
    if (_missing.name or "").partition(".")[0] not in ("mcp",):
        raise
    raise ImportError(
        f"agentstream.mcp needs the `mcp` extra ({_missing.name} is not installed): "
        "pip install 'agentstream[mcp]'",
        name=_missing.name,
    ) from None

from ._connection import MCPConnectionError as MCPConnectionError
from ._connection import MCPServerBase as MCPServerBase
from ._convert import MCPProgress as MCPProgress
from ._convert import ProgressHook as ProgressHook
from ._servers import MCPServerHTTP as MCPServerHTTP
from ._servers import MCPServerStdio as MCPServerStdio

__all__ = [
    "MCPConnectionError",
    "MCPProgress",
    "MCPServerBase",
    "MCPServerHTTP",
    "MCPServerStdio",
    "ProgressHook",
]
