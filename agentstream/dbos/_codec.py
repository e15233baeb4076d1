"""Events to JSON text for the event log, and back to agentstream's event dataclasses.

Writing reuses `event_to_dict` (what the CLI's `--json` and the web send). Reading
rebuilds the same event class from that data: tuples become tuples again, usage a
`Usage`, a run's result a `RunResult` (its state through `RunState.from_dict`), and an
exception a `RecordedError` that keeps the original type's name and message (the
exception object itself stayed in the process that raised it). Values a tool or a typed
answer returned come back as their JSON data.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from agentstream import (
    ApprovalRequest,
    ApprovalRequested,
    Event,
    MaxStepsReached,
    MessageDelivered,
    MessageQueued,
    OutputDelta,
    OutputInvalid,
    OutputReady,
    ReasoningDelta,
    RefusalDelta,
    RunError,
    RunFailed,
    RunFinished,
    RunResult,
    RunStarted,
    RunState,
    ServerError,
    StepFinished,
    StepInfo,
    StepInterrupted,
    StepStarted,
    TextDelta,
    ToolCallApproved,
    ToolCallDelta,
    ToolCallDenied,
    ToolCallInvalid,
    ToolCallReady,
    ToolCallStarted,
    ToolCancelled,
    ToolFinished,
    ToolProgress,
    ToolQueued,
    ToolStarted,
    Usage,
    event_to_dict,
)

__all__ = ["RecordedError", "decode", "encode"]


class RecordedError(RunError):
    """An error as a durable run's event log kept it: `kind` names its original type.

    Each one read back is of a subclass named after that type (a `ValueError` a tool
    raised comes back as a `RecordedError` whose class is named `ValueError`).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


_CLASSES: dict[str, type[Any]] = {
    str(cls.__dataclass_fields__["type"].default): cls
    for cls in (
        RunStarted, StepStarted, StepInterrupted, TextDelta, ReasoningDelta, RefusalDelta,
        ToolCallStarted, ToolCallDelta, ServerError, OutputDelta, OutputReady, OutputInvalid,
        ToolCallReady, ToolCallInvalid, ApprovalRequested, ToolCallApproved, ToolCallDenied,
        ToolStarted, ToolProgress, ToolFinished, ToolCancelled, StepFinished, MaxStepsReached,
        RunFinished, RunFailed, MessageQueued, MessageDelivered, ToolQueued,
    )
}  # fmt: skip


def encode(event: Event) -> str:
    """The event as one line of JSON."""
    data = event_to_dict(event)
    if isinstance(event, RunFinished):
        state = event.result.state
        # The state's own format, so that reading it back is `RunState.from_dict`.
        data["result"]["state"] = state.to_dict() if state is not None else None
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> Event:
    """The event that `encode` wrote."""
    data = json.loads(text)
    cls = _CLASSES[data["type"]]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in data:
            continue
        values[f.name] = _field(f.name, str(f.type), data[f.name])
    event: Event = cls(**values)
    return event


def _field(name: str, annotation: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "error" and isinstance(value, dict):
        return _error(value)
    if name == "usage":
        return _usage(value)
    if name == "result":
        return _result(value)
    if annotation.startswith("tuple[") and isinstance(value, list):
        return tuple(value)
    return value


def _usage(data: dict[str, Any]) -> Usage:
    """A `Usage` from its own fields (not the wire's `usage` object, which `from_dict` reads)."""
    names = [f.name for f in dataclasses.fields(Usage)]
    return Usage(**{name: int(data.get(name) or 0) for name in names})


def _error(data: dict[str, Any]) -> RecordedError:
    kind, message = str(data.get("type", "Exception")), str(data.get("message", ""))
    return _error_class(kind)(kind, message)


_KINDS: dict[str, type[RecordedError]] = {}


def _error_class(kind: str) -> type[RecordedError]:
    """A `RecordedError` subclass named `kind`, so that what shows an error's type name
    (the web's events, `error_text`) shows the original one, as a live run would."""
    if not kind.isidentifier() or len(_KINDS) >= 512:
        return RecordedError
    if kind not in _KINDS:
        _KINDS[kind] = type(kind, (RecordedError,), {"__module__": __name__})
    return _KINDS[kind]


def _result(data: dict[str, Any]) -> RunResult[Any]:
    steps = tuple(
        StepInfo(**{**step, "usage": _field("usage", "", step.get("usage"))})
        for step in data.get("steps", [])
    )
    state = data.get("state")
    return RunResult(
        run_id=data["run_id"],
        output=data["output"],
        messages=tuple(data.get("messages", [])),
        new_messages=tuple(data.get("new_messages", [])),
        stop_reason=data["stop_reason"],
        usage=_usage(data.get("usage") or {}),
        steps=steps,
        duration=data.get("duration", 0.0),
        refusal=data.get("refusal"),
        state=RunState.from_dict(state) if state is not None else None,
        approvals=tuple(ApprovalRequest(**a) for a in data.get("approvals", [])),
    )
