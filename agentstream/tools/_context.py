"""`ToolContext`: what a tool may learn about the call it serves, and the run's `deps`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic

from typing_extensions import TypeVar

from .._convert import copy_message
from .._exceptions import ToolDefinitionError

__all__ = ["DepsT", "ToolContext", "handler_takes_context", "nested_hooks"]

DepsT = TypeVar("DepsT", default=Any)
"""The type of a run's `deps` (`Any` for a bare `ToolContext`)."""


class ToolContext(Generic[DepsT]):
    """What a tool may learn about the call it serves.

    Annotate the parameter `ToolContext[MyDeps]` and `ctx.deps` has type `MyDeps` for
    the type checker: the object given to the run as `agent.run(prompt, deps=...)`.
    """

    __slots__ = (
        "_approver",
        "_cancelled",
        "_conversation",
        "_copy",
        "_progress",
        "_relay",
        "_resume",
        "deps",
        "early",
        "run_id",
        "step",
        "tool_call_id",
        "tool_name",
    )

    run_id: str
    """The run this call belongs to."""
    tool_call_id: str
    """The id the model gave this call."""
    tool_name: str
    """The name the model called."""
    step: int
    """The 1-based step of the run in which the model made the call."""
    early: bool
    """Whether the call started before the model's response was whole (`Tool.early`);
    `messages` then ends before this step's assistant message, still streaming."""
    deps: DepsT
    """What the caller gave the run as `deps=` (a user, a database handle; None if not
    given). Not saved with the run's state: give it again to `resume`."""

    def __init__(
        self,
        run_id: str,
        tool_call_id: str,
        tool_name: str,
        step: int,
        messages: Sequence[Mapping[str, Any]] = (),
        early: bool = False,
        progress: Callable[[float | None, str | None, str | None], None] | None = None,
        deps: Any = None,
        relay: Callable[[Any], None] | None = None,
        resume: Any = None,
        approver: Any = None,
    ) -> None:
        self._cancelled = False  # set by the run, read by a sync tool in its worker thread
        self.deps = deps
        self._relay = relay  # where an agent tool sends its inner run's events
        self._resume = resume  # what takes a paused agent tool's inner run up again
        self._approver = approver  # the run's approver, for an agent tool's inner calls
        self.early = early
        self._progress = progress
        self.run_id = run_id
        self.tool_call_id = tool_call_id
        self.tool_name = tool_name
        self.step = step
        self._conversation = tuple(messages)
        self._copy: tuple[dict[str, Any], ...] | None = None

    @property
    def messages(self) -> tuple[dict[str, Any], ...]:
        """The conversation so far as OpenAI message dicts, ending with the assistant
        message that made this call.

        A deep copy, made the first time it is read: editing it never changes the run's
        conversation or its next request.
        """
        if self._copy is None:
            self._copy = tuple(copy_message(message) for message in self._conversation)
        return self._copy

    @property
    def cancelled(self) -> bool:
        """Whether the call has been cancelled (`AgentRun.cancel_call`, its timeout, or the
        run being left). An async tool is interrupted anyway; a sync tool runs on in its
        worker thread, its result dropped, unless it looks here and returns early."""
        return self._cancelled

    def _mark_cancelled(self) -> None:
        """Called by the run (from the event loop's thread) when the call is stopped."""
        self._cancelled = True

    def progress(
        self, fraction: float | None = None, message: str | None = None, output: str | None = None
    ) -> None:
        """Report how far the call has got: a fraction from 0 to 1, a status message, and/or
        the partial output so far. The run turns it into a `ToolProgress` event.

        Cheap and never blocks; callable from a sync tool's worker thread too. Reports
        that come faster than they are consumed are coalesced: the latest wins, and the
        last one before the tool ends is always delivered.
        """
        if fraction is not None and not 0.0 <= fraction <= 1.0:  # also rejects nan
            raise ValueError(f"fraction must be from 0 to 1, not {fraction!r}")
        if self._progress is not None:
            self._progress(fraction, message, output)

    def __repr__(self) -> str:
        return (
            f"ToolContext(run_id={self.run_id!r}, tool_call_id={self.tool_call_id!r}, "
            f"tool_name={self.tool_name!r}, step={self.step})"
        )


def nested_hooks(context: ToolContext[Any]) -> tuple[Callable[[Any], None] | None, Any, Any]:
    """For an agent tool: the relay of inner events, the paused inner run to take up,
    and the calling run's approver."""
    return context._relay, context._resume, context._approver


def handler_takes_context(handler: Callable[..., Any], label: str) -> bool:
    """Whether a `from_schema` handler takes `(args, context)` rather than `(args)`."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return False  # a builtin without a signature: assume handler(args)
    accepts = []
    for count in (1, 2):
        try:
            signature.bind(*range(count))
            accepts.append(count)
        except TypeError:
            pass
    if not accepts:
        raise ToolDefinitionError(
            f"the handler of {label} must accept (args) or (args, context); "
            f"its signature is {signature}"
        )
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return 2 in accepts and len(positional) >= 2
