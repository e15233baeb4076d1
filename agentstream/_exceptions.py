"""Every error agentstream raises derives from `AgentStreamError`.

```
AgentStreamError
├── SetupError                 a mistake in how agentstream is used; fix the code
│   ├── ToolDefinitionError    a tool that cannot be offered to a model
│   ├── StateError             a saved run state of another version, or inconsistent
│   └── CallNotRunning         cancel_call named a call that is not running or waiting
├── ToolError                  raised by a tool on purpose; its message goes to the model
├── ToolArgumentsError         a call's arguments do not fit the tool's schema
└── RunError                   something failed while a run was going on
    ├── ModelError             the server refused the request or failed before answering
    │   └── MediaRefused       the server does not take the images or files in the request
    ├── StreamError            the response stream was broken, malformed, or carried an error
    ├── RunTimeout             a time limit of the run was reached
    ├── RetriesExhausted       a step failed on every attempt it was allowed
    ├── ErrorBudgetExceeded    the model made too many invalid tool calls in one run
    └── ToolCrashed            a tool raised SystemExit (or KeyboardInterrupt in its thread)
```

`ToolError` and `ToolArgumentsError` never escape a run: the agent loop turns them
into tool messages so the model can correct itself.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentStreamError",
    "CallNotRunning",
    "ErrorBudgetExceeded",
    "MediaRefused",
    "ModelError",
    "RetriesExhausted",
    "RunError",
    "RunTimeout",
    "SetupError",
    "StateError",
    "StreamError",
    "ToolArgumentsError",
    "ToolCrashed",
    "ToolDefinitionError",
    "ToolError",
]


class AgentStreamError(Exception):
    """The root of every error agentstream raises."""


class SetupError(AgentStreamError):
    """agentstream was used wrongly: bad arguments to `Agent`, a bad tool, a bad file."""


class ToolDefinitionError(SetupError):
    """A tool cannot be offered to a model: bad name, duplicate name, unusable signature."""


class StateError(SetupError):
    """A saved run state cannot be resumed: another format version, or inconsistent."""


class CallNotRunning(SetupError):
    """`AgentRun.cancel_call` named a call it cannot cancel: an id the step under way
    does not hold (unknown, of another step, awaiting approval), or a call that has
    already finished or been cancelled."""


class ToolError(AgentStreamError):
    """Raise this inside a tool to send exactly `message` back to the model as the result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ToolArgumentsError(AgentStreamError):
    """A tool call's arguments are not JSON or do not fit the tool's schema.

    `message` is short and precise, written for the model that made the call.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunError(AgentStreamError):
    """A run failed while it was going on."""


class ModelError(RunError):
    """The server refused the request or failed before it streamed anything.

    `status_code` is the HTTP status where there was one; `body` is the error body the
    server sent, if any; `retry_after` the seconds the server asked to wait before
    trying again (`Retry-After`), and `should_retry` its explicit yes or no
    (`x-should-retry`), where it sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after
        self.should_retry = should_retry


class StreamError(RunError):
    """The response stream broke: it was cut, malformed, or carried an error payload.

    Tool calls from a broken stream are never executed.
    """

    def __init__(self, message: str, *, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


class RunTimeout(RunError):
    """A time limit was reached: `limit` names it (`first_chunk`, `idle`, `step`, `run`)."""

    def __init__(self, limit: str, seconds: float) -> None:
        super().__init__(f"the {limit.replace('_', ' ')} time limit of {seconds:g} s was reached")
        self.limit = limit
        self.seconds = seconds


class RetriesExhausted(RunError):
    """A step failed on every attempt it was allowed; `errors` holds each attempt's error.

    The last error is also this exception's `__cause__`.
    """

    def __init__(self, errors: tuple[RunError, ...]) -> None:
        seen: dict[str, int] = {}  # each distinct failure once, in order, with a count
        for error in errors:
            seen[str(error)] = seen.get(str(error), 0) + 1
        tried = "; ".join(
            text if count == 1 else f"{text} ({count} times)" for text, count in seen.items()
        )
        super().__init__(f"the step failed on all {len(errors)} attempts: {tried}")
        self.errors = errors


class ErrorBudgetExceeded(RunError):
    """The model made more invalid tool calls in one run than the agent allows."""


class ToolCrashed(RunError):
    """A tool raised `SystemExit` (or `KeyboardInterrupt` in a sync tool's worker thread).

    Any other exception from a tool goes back to the model as that call's result; these
    ask for the program to stop, so the run stops instead, with this error. The tool's
    own exception is this one's `__cause__`.
    """


class MediaRefused(ModelError):
    """The server refused the request because of the images or files in it (a tool's
    result, say): the model may not take that input. `status_code` and `body` are the
    server's answer."""
