"""What a tool's failure becomes: the text the model is told, or what ends the run."""

from __future__ import annotations

import anyio

from .._convert import exception_text, group_members, safe_str
from .._exceptions import ToolCrashed, ToolError

__all__ = [
    "crash_of",
    "describe_exception",
    "failure_text",
    "only_cancellation",
    "tool_error_text",
]

_ERROR_TEXT_LIMIT = 2000


def _leaves(exc: BaseException, limit: int = 1000) -> list[BaseException]:
    """The exceptions inside `exc` (itself unless a group), looked at without recursion."""
    leaves: list[BaseException] = []
    pending = [exc]
    while pending and len(leaves) + len(pending) <= limit:
        item = pending.pop()
        members = group_members(item)
        if members is None:
            leaves.append(item)
        else:
            pending.extend(members)
    return leaves + pending


def only_cancellation(exc: BaseException) -> bool:
    cancelled = anyio.get_cancelled_exc_class()
    return all(isinstance(leaf, cancelled) for leaf in _leaves(exc))


def crash_of(exc: BaseException, name: str, *, in_thread: bool) -> BaseException | None:
    """What ends the run instead of going to the model: SystemExit, or KeyboardInterrupt.

    A KeyboardInterrupt in the event loop's thread may be the user's Ctrl-C, so it goes
    on as one (before anything else); in a sync tool's worker thread, where no signal
    lands, the tool raised it itself, which is a crash like SystemExit.
    """
    leaves = _leaves(exc)
    if not in_thread:
        interrupt = next((leaf for leaf in leaves if isinstance(leaf, KeyboardInterrupt)), None)
        if interrupt is not None:
            return interrupt
    for leaf in leaves:
        if isinstance(leaf, (SystemExit, KeyboardInterrupt)):
            return ToolCrashed(f"the tool {name!r} raised {exception_text(leaf)}; the run stops")
    return None


def tool_error_text(exc: ToolError) -> str:
    """The message a tool chose to send, as text, whatever it put in `message`."""
    try:
        message = exc.message
    except Exception:
        return describe_exception(exc)
    return message if type(message) is str else safe_str(message)


def failure_text(exc: BaseException) -> str:
    if only_cancellation(exc):
        return (
            f"{type(exc).__name__}: the tool was cancelled by something other than the run "
            "and did not finish"
        )
    return describe_exception(exc)


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, short enough to send to a model; never raises."""
    return exception_text(exc, _ERROR_TEXT_LIMIT)
