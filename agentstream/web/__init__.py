"""agentstream on the web: a Starlette app with a chat page, the AI SDK's UI stream and JSON events.

```python
from fastapi import FastAPI
from agentstream.web import create_app

api = FastAPI()
api.mount("/agent", create_app(agent))  # page at /agent/, useChat at /agent/api/chat
```

Its defaults are a local server's: only loopback `Host` names, only the app's own
origin, JSON bodies, ids checked, buffers and retention bounded (see docs/security.md).

Needs the `web` extra (`pip install 'agentstream[web]'`). The core never imports this
package.
"""

from __future__ import annotations

# Without the extra, one ImportError that names the line to run, not a traceback into
# the integration's modules. Only the extra's own packages missing are caught.
try:
    import starlette as _starlette  # noqa: F401
except ModuleNotFoundError as _missing:
    if (_missing.name or "").partition(".")[0] not in ("starlette",):
        raise
    raise ImportError(
        f"agentstream.web needs the `web` extra ({_missing.name} is not installed): "
        "pip install 'agentstream[web]'",
        name=_missing.name,
    ) from None

from ._app import create_app as create_app
from ._durable import DurableRuns as DurableRuns
from ._guard import LOOPBACK_HOSTS as LOOPBACK_HOSTS
from ._messages import MessageError as MessageError
from ._messages import approvals_of as approvals_of
from ._messages import to_openai as to_openai
from ._messages import to_ui as to_ui
from ._runs import LiveRun as LiveRun
from ._runs import NotHolder as NotHolder
from ._runs import RegistryFull as RegistryFull
from ._runs import RunRegistry as RunRegistry
from ._runs import RunSummary as RunSummary
from ._runs import safe_event_dict as safe_event_dict
from ._serve import demo_tools as demo_tools
from ._serve import serve as serve
from ._ui_stream import UI_STREAM_HEADERS as UI_STREAM_HEADERS
from ._ui_stream import UIStreamEncoder as UIStreamEncoder
from ._ui_stream import error_text as error_text

# Plain sorted order, as the package's other `__all__` (a test checks it), not isort's.
__all__ = [  # noqa: RUF022
    "DurableRuns",
    "LOOPBACK_HOSTS",
    "LiveRun",
    "MessageError",
    "NotHolder",
    "RegistryFull",
    "RunRegistry",
    "RunSummary",
    "UIStreamEncoder",
    "UI_STREAM_HEADERS",
    "approvals_of",
    "create_app",
    "demo_tools",
    "error_text",
    "safe_event_dict",
    "serve",
    "to_openai",
    "to_ui",
]
