"""Where a run stands between steps: a plain-JSON `RunState`, its steps and why it stopped.

The loop is a function of `RunState`: each step reads it, streams a response, decides
the fate of each call, runs the tools and leaves it ready for the next step (the step
under way is the loop's own `StepState`). Saved as
JSON it lets a run pause (for a person's approval), move to another process, or
survive a crash; `_checks` refuses a state from an unknown version or one tampered
into inconsistency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._exceptions import StateError
from .._usage import Usage
from ._checks import check_state, parse_state

__all__ = [
    "STATE_VERSION",
    "CallStatus",
    "PendingCall",
    "PendingStep",
    "RunState",
    "StepInfo",
    "StopReason",
    "call_ids",
]

STATE_VERSION = 2
"""The format of `RunState.to_json()`. Version 1 (before decisions were recorded) is read
too: its calls carry no decision, so a gated call it says is ready is refused on resume."""

StopReason = Literal[
    "answer",
    "max_steps",
    "max_tool_calls",
    "length",
    "content_filter",
    "refusal",
    "approval_required",
    "guardrail",
    "usage_limit",
]
"""Why a run ended normally.

- `answer`: the model answered without asking for tools;
- `max_steps`: the step limit was reached (with `final_answer`, after one last step
  without tools);
- `max_tool_calls`: the run's limit of tool calls was reached (likewise);
- `length`: the response hit the token limit (its cut tool calls were not run);
- `content_filter`: the server withheld the response;
- `refusal`: the model refused;
- `approval_required`: the run paused: calls wait for a person's approval (see
  `RunResult.approvals`); `Agent.resume` continues it;
- `guardrail`: a guardrail stopped the run (see `RunResult.guardrail`).
- `usage_limit`: a usage limit was reached (`RunResult.usage_limit` says which).
"""


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Timings and usage of one step."""

    step: int
    finish_reason: str | None
    usage: Usage | None
    time_to_first_token: float | None
    duration: float
    tokens_per_second: float | None
    tool_calls: int
    tool_time: float
    """Wall time spent running this step's tools, in seconds."""
    attempts: int = 1
    """Requests made for this step: 1, plus one per retry after a failed attempt."""
    model: str | None = None
    """The model asked for the response, when the agent has fallback models."""
    cost: float | None = None
    """The response's cost in USD, when the agent has prices for its model."""


CallStatus = Literal["ready", "awaiting_approval", "running", "finished", "denied"]
"""What became of a call of the step in progress.

- `ready`: valid and allowed (approved, or needing no approval), not started yet;
- `awaiting_approval`: waiting for a person's decision;
- `running`: started and not known to have finished;
- `finished`: its output is known (the tool's result, or why it was refused);
- `denied`: not approved; its output tells the model so.
"""


@dataclass(slots=True)
class PendingCall:
    """One call of the step in progress and what became of it."""

    id: str
    index: int
    name: str
    arguments: str
    """The arguments as the model sent them (JSON text)."""
    status: CallStatus
    output: str | None = None
    """What the model is told for this call, once known."""
    decision: dict[str, Any] | None = None
    """The person's decision on it, once made: `approved`, `by` whom, `at` (epoch
    seconds) and the `digest` of the call it applies to (id, tool, arguments)."""
    subrun: dict[str, Any] | None = None
    """For an agent tool whose inner run paused for approval: that run's saved `state`
    and its waiting `requests`, to take it up on resume (see `Agent.as_tool`)."""
    media: list[dict[str, Any]] | None = None
    """The images and files the tool returned, as chat content parts (data URLs)."""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "index": self.index,
            "name": self.name,
            "arguments": self.arguments,
            "status": self.status,
            "output": self.output,
            "decision": self.decision,
        }
        if self.subrun is not None:  # only then: the states of other runs stay as they were
            data["subrun"] = self.subrun
        if self.media:  # only then: a state without media reads the same everywhere
            data["media"] = self.media
        return data


@dataclass(slots=True)
class PendingStep:
    """A step whose response is whole but whose calls are not all answered yet."""

    step: int
    assistant: dict[str, Any]
    """The assistant message that made the calls, as it will join the conversation."""
    calls: list[PendingCall]
    finish_reason: str | None
    info: StepInfo
    """Timings and usage of the response, kept for the result."""
    response_id: str | None = None
    response_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "assistant": self.assistant,
            "calls": [call.to_dict() for call in self.calls],
            "finish_reason": self.finish_reason,
            "info": _step_dict(self.info),
            "response_id": self.response_id,
            "response_model": self.response_model,
        }


@dataclass(slots=True)
class RunState:
    """Everything a run needs to go on: save it with `to_json()`, resume with `Agent.resume`.

    The conversation in `messages` is consistent at every moment (each tool call has
    its result); the calls of a step still in progress are in `pending`.
    """

    run_id: str
    messages: list[dict[str, Any]]
    """The conversation as OpenAI message dicts."""
    first_new: int = 0
    """Where the messages this run added begin."""
    step: int = 0
    """The number of the last step begun."""
    usage: Usage = field(default_factory=Usage)
    steps: list[StepInfo] = field(default_factory=list)
    invalid_calls: int = 0
    """Invalid tool calls so far, against the agent's `max_invalid_calls`."""
    calls_run: int = 0
    """Tool calls run so far, against the agent's `max_tool_calls`."""
    retries_used: int = 0
    """Retries made so far, against the retry budget."""
    final_only: StopReason | None = None
    """Why the next request offers the model no tools (a limit was reached)."""
    pending: PendingStep | None = None
    """The step in progress, if its calls are not all answered."""
    stop_reason: str | None = None
    """Why the run stopped, once it has (`approval_required` while paused)."""
    queued: list[dict[str, Any]] = field(default_factory=list)
    """User messages sent to the run (`AgentRun.send`) and not delivered yet, in order:
    each `{"id", "text", "step"}` (`step`: the step under way when it was sent)."""
    used_ids: set[str] = field(default_factory=set, repr=False, compare=False)
    """Every tool call id in the conversation: a repeated one is replaced."""

    @classmethod
    def start(cls, run_id: str, messages: list[dict[str, Any]]) -> RunState:
        """The state of a run that has made no request yet."""
        return cls(run_id, messages, first_new=len(messages), used_ids=call_ids(messages))

    @property
    def finished(self) -> bool:
        """Whether the run has ended (not paused, nothing pending)."""
        return self.stop_reason is not None and self.pending is None

    def retries_left(self, budget: int | None) -> float:
        return math.inf if budget is None else max(budget - self.retries_used, 0)

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON data."""
        return {
            "version": STATE_VERSION,
            "run_id": self.run_id,
            "messages": self.messages,
            "first_new": self.first_new,
            "step": self.step,
            "usage": _usage_dict(self.usage),
            "steps": [_step_dict(info) for info in self.steps],
            "invalid_calls": self.invalid_calls,
            "calls_run": self.calls_run,
            "retries_used": self.retries_used,
            "final_only": self.final_only,
            "pending": None if self.pending is None else self.pending.to_dict(),
            "stop_reason": self.stop_reason,
            "queued": self.queued,
        }

    def to_json(self) -> str:
        """The state as a JSON document; `RunState.from_json` reads it back exactly."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> RunState:
        """Read `to_dict()`'s data; raises `StateError` if it is not a consistent state."""
        try:  # only what JSON can hold, so that the state round-trips through it exactly
            plain = json.loads(json.dumps(data))
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateError(
                f"the run state is not plain JSON data: {type(exc).__name__}"
            ) from None
        return cls._from_plain(plain)

    @classmethod
    def _from_plain(cls, data: Any) -> RunState:
        fields = parse_state(data, STATE_VERSION)
        pending = fields.pop("pending")
        usage = Usage(**fields.pop("usage"))
        steps = [StepInfo(**info) for info in fields.pop("steps")]
        state = cls(
            **fields,
            usage=usage,
            steps=steps,
            pending=None
            if pending is None
            else PendingStep(
                step=pending["step"],
                assistant=pending["assistant"],
                calls=[PendingCall(**call) for call in pending["calls"]],
                finish_reason=pending["finish_reason"],
                info=StepInfo(**pending["info"]),
                response_id=pending["response_id"],
                response_model=pending["response_model"],
            ),
        )
        check_state(state.messages, None if state.pending is None else state.pending.to_dict())
        state.used_ids = call_ids(state.messages)
        if state.pending is not None:
            state.used_ids.update(call.id for call in state.pending.calls)
            for call in state.pending.calls:
                if call.subrun is not None:  # an agent tool's paused run: checked alike
                    cls._from_plain(call.subrun["state"])
        return state

    @classmethod
    def from_json(cls, text: str | bytes) -> RunState:
        """Read `to_json()`'s document; raises `StateError` if it is not a consistent state."""
        return cls._from_plain(_load_json(text))


def _load_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StateError(f"the run state is not JSON: {type(exc).__name__}") from None


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cached_tokens": usage.cached_tokens,
    }


def _step_dict(info: StepInfo) -> dict[str, Any]:
    return {
        "step": info.step,
        "finish_reason": info.finish_reason,
        "usage": None if info.usage is None else _usage_dict(info.usage),
        "time_to_first_token": info.time_to_first_token,
        "duration": info.duration,
        "tokens_per_second": info.tokens_per_second,
        "tool_calls": info.tool_calls,
        "tool_time": info.tool_time,
        "attempts": info.attempts,
        # Only when set, so the state of a run without fallbacks or prices is unchanged.
        **({"model": info.model} if info.model is not None else {}),
        **({"cost": info.cost} if info.cost is not None else {}),
    }


def call_ids(messages: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ids of the tool calls in a conversation."""
    ids: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("id"), str):
                ids.add(call["id"])
    return ids
