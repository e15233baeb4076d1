"""Checks on a saved run state: its version, its fields' types, its conversation.

A state that did not come from `RunState.to_json()` as it is (another version, edited
by hand, tampered with) is refused with a `StateError` that says what is wrong, before
a request is sent or a tool is run on its word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import StateError
from .._usage import Usage

__all__ = ["check_state", "parse_state"]

_STATUSES = frozenset({"ready", "awaiting_approval", "running", "finished", "denied"})
_LIMITS = frozenset({"max_steps", "max_tool_calls"})  # what `final_only` may name
_COUNTS = ("first_new", "step", "invalid_calls", "calls_run", "retries_used")
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens", "cached_tokens")
_STEP: dict[str, type | tuple[type, ...]] = {
    "step": int,
    "finish_reason": (str, type(None)),
    "usage": (dict, type(None)),
    "time_to_first_token": (float, int, type(None)),
    "duration": (float, int),
    "tokens_per_second": (float, int, type(None)),
    "tool_calls": int,
    "tool_time": (float, int),
    "attempts": int,
}
_STEP_OPTIONAL: dict[str, type | tuple[type, ...]] = {"model": str, "cost": (float, int)}


def parse_state(data: Any, version: int) -> dict[str, Any]:
    """The fields of a saved state, checked for type; raises `StateError`."""
    if not isinstance(data, Mapping):
        raise StateError("the run state must be a JSON object")
    found = data.get("version")
    if found != version and found != 1:  # 1: the same, without recorded decisions
        raise StateError(
            f"the run state is of version {found!r}; this agentstream reads version {version}"
        )
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise StateError("the run state has no run_id")
    fields: dict[str, Any] = {"run_id": run_id, "messages": _messages(data.get("messages"))}
    for name in _COUNTS:
        fields[name] = _count(data.get(name), name)
    if fields["first_new"] > len(fields["messages"]):
        raise StateError("the run state's first_new is past the end of its messages")
    fields["usage"] = _usage(data.get("usage"), "usage")
    fields["steps"] = [_step(info) for info in _list(data.get("steps"), "steps")]
    final_only = data.get("final_only")
    if final_only is not None and final_only not in _LIMITS:
        raise StateError(f"the run state's final_only is not a limit: {final_only!r}")
    fields["final_only"] = final_only
    stop = data.get("stop_reason")
    if stop is not None and not isinstance(stop, str):
        raise StateError("the run state's stop_reason must be a string or null")
    fields["stop_reason"] = stop
    fields["pending"] = _pending(data.get("pending"), fields["step"])
    fields["queued"] = _queued(data.get("queued", []))  # absent from states saved before it
    return fields


def check_state(messages: list[dict[str, Any]], pending: Mapping[str, Any] | None) -> None:
    """Refuse a conversation in which a call is unanswered or a result answers no call."""
    open_calls: set[str] = set()
    for position, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                raise StateError(
                    f"message {position} is a tool result for a call that does not exist "
                    f"or was already answered: {call_id!r:.80}"
                )
            open_calls.discard(call_id)
            continue
        if open_calls:
            raise StateError(
                f"message {position} follows an unanswered tool call: {sorted(open_calls)[0]!r:.80}"
            )
        if role == "assistant":
            open_calls = _call_ids(message, f"message {position}")
    if open_calls:
        raise StateError("the conversation ends with an unanswered tool call outside `pending`")
    if pending is not None:
        ids = _call_ids(pending["assistant"], "the pending assistant message")
        listed = [call["id"] for call in pending["calls"]]
        if set(listed) != ids or len(listed) != len(ids):
            raise StateError("the pending calls are not the calls of the pending assistant message")


def _call_ids(message: Mapping[str, Any], where: str) -> set[str]:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise StateError(f"{where} has tool_calls that are not a list")
    ids: set[str] = set()
    for call in calls:
        call_id = call.get("id") if isinstance(call, Mapping) else None
        if not isinstance(call_id, str) or not call_id or call_id in ids:
            raise StateError(f"{where} has a tool call without a unique id")
        ids.add(call_id)
    return ids


def _messages(value: Any) -> list[dict[str, Any]]:
    messages = _list(value, "messages")
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise StateError(f"message {position} is not an OpenAI message with a role")
    return messages


def _pending(value: Any, step: int) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise StateError("the run state's pending step must be an object or null")
    if value.get("step") != step:
        raise StateError("the pending step is not the run's last step")
    assistant = value.get("assistant")
    if not isinstance(assistant, dict) or assistant.get("role") != "assistant":
        raise StateError("the pending step has no assistant message")
    calls = []
    for call in _list(value.get("calls"), "pending calls"):
        calls.append(_pending_call(call))
    if not calls:
        raise StateError("the pending step has no calls")
    reason = value.get("finish_reason")
    if not isinstance(reason, (str, type(None))):
        raise StateError("the pending step's finish_reason must be a string or null")
    info = _step(value.get("info"))
    names = {key: value.get(key) for key in ("response_id", "response_model")}
    if not all(isinstance(name, (str, type(None))) for name in names.values()):
        raise StateError("the pending step's response id and model must be strings or null")
    return {
        "step": step,
        "assistant": assistant,
        "calls": calls,
        "finish_reason": reason,
        "info": info,
        **names,
    }


def _queued(value: Any) -> list[dict[str, Any]]:
    queued = []
    for message in _list(value, "queued messages"):
        if (
            not isinstance(message, Mapping)
            or set(message) != {"id", "text", "step"}
            or not isinstance(message["id"], str)
            or not isinstance(message["text"], str)
        ):
            raise StateError("a queued message must be an object with an id, a text and a step")
        queued.append({**message, "step": _count(message["step"], "queued message's step")})
    return queued


def _pending_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, Mapping):
        raise StateError("a pending call must be an object")
    kinds: dict[str, type] = {
        "id": str, "index": int, "name": str, "arguments": str, "status": str,
    }  # fmt: skip
    for key, kind in kinds.items():
        if not isinstance(call.get(key), kind) or isinstance(call.get(key), bool):
            raise StateError(f"a pending call has no valid {key!r}")
    if call["status"] not in _STATUSES:
        raise StateError(f"a pending call has an unknown status: {call['status']!r:.40}")
    output = call.get("output")
    if not isinstance(output, (str, type(None))):
        raise StateError("a pending call's output must be a string or null")
    if call["status"] in ("finished", "denied") and output is None:
        raise StateError(f"the {call['status']} call {call['id']!r:.80} has no output")
    decision = call.get("decision")
    if decision is not None and not _is_decision(decision):
        raise StateError(f"the call {call['id']!r:.80} has a malformed decision")
    subrun = call.get("subrun")
    if subrun is not None and not _is_subrun(subrun):
        raise StateError(f"the call {call['id']!r:.80} has a malformed inner run")
    media = call.get("media")
    if media is not None and not (
        isinstance(media, list)
        and all(isinstance(part, dict) and isinstance(part.get("type"), str) for part in media)
    ):
        raise StateError(f"the call {call['id']!r:.80} has media that are not content parts")
    return {key: call[key] for key in kinds} | {
        "output": output, "decision": decision, "subrun": subrun, "media": media,
    }  # fmt: skip


def _is_subrun(value: Any) -> bool:
    """An agent tool's paused inner run: its state (checked in full when taken up) and
    the requests it waits on."""
    if not isinstance(value, dict) or set(value) != {"state", "requests"}:
        return False
    requests = value["requests"]
    return (
        isinstance(value["state"], dict)
        and isinstance(requests, list)
        and bool(requests)
        and all(_is_request(request) for request in requests)
    )


def _is_request(value: Any) -> bool:
    kinds: dict[str, type] = {
        "id": str, "tool": str, "arguments": dict, "step": int, "index": int,
        "raw_arguments": str, "path": list,
    }  # fmt: skip
    return (
        isinstance(value, dict)
        and set(value) == set(kinds)
        and all(isinstance(value[key], kind) for key, kind in kinds.items())
        and all(isinstance(name, str) for name in value["path"])
    )


def _is_decision(value: Any) -> bool:
    kinds: dict[str, type | tuple[type, ...]] = {
        "approved": bool, "by": str, "at": (int, float), "digest": str,
    }  # fmt: skip
    return (
        isinstance(value, dict)
        and set(value) == set(kinds)
        and all(isinstance(value[key], kind) for key, kind in kinds.items())
    )


def _step(value: Any) -> dict[str, Any]:
    if (
        not isinstance(value, Mapping)
        or not set(_STEP) <= set(value) <= _STEP.keys() | _STEP_OPTIONAL.keys()
    ):
        raise StateError("a step of the run state does not have the fields of StepInfo")
    for key, kind in (_STEP | _STEP_OPTIONAL).items():
        if key not in value:
            continue
        if not isinstance(value[key], kind) or isinstance(value[key], bool):
            raise StateError(f"a step of the run state has a wrong {key!r}")
    info = dict(value)
    if info["usage"] is not None:
        info["usage"] = Usage(**_usage(info["usage"], "a step's usage"))
    return info


def _usage(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise StateError(f"the run state's {where} must be an object")
    return {name: _count(value.get(name, 0), f"{where}.{name}") for name in _USAGE}


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StateError(f"the run state's {name} must be a count, not {value!r:.40}")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise StateError(f"the run state's {name} must be a list")
    return value
