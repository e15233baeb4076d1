"""agentstream: a small, fast runtime for tool-calling agents built on streamed function calls."""

from __future__ import annotations

from ._exceptions import AgentStreamError as AgentStreamError
from ._exceptions import ErrorBudgetExceeded as ErrorBudgetExceeded
from ._exceptions import ModelError as ModelError
from ._exceptions import RunError as RunError
from ._exceptions import SetupError as SetupError
from ._exceptions import StreamError as StreamError
from ._exceptions import ToolArgumentsError as ToolArgumentsError
from ._exceptions import ToolDefinitionError as ToolDefinitionError
from ._exceptions import ToolError as ToolError

__version__ = "0.1.0"

__all__ = [
    "AgentStreamError",
    "ErrorBudgetExceeded",
    "ModelError",
    "RunError",
    "SetupError",
    "StreamError",
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolError",
]
