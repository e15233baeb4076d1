"""The embedded offline model: a deterministic policy that reads the conversation and the tools.

```python
from agentstream.testing import offline_model

model = offline_model(ttft=0.35, tokens_per_second=60)  # or flat out: offline_model()
async with model.async_client() as client:  # a real openai.AsyncOpenAI
    ...
```

`serve_model(port=8000)` serves the same model over HTTP for any client
(`base_url="http://127.0.0.1:8000/v1"`, any API key, model `agentstream-offline`).

How it answers, with no network and no weights:

- From the last user message it picks the tools to call by the words they share with
  the message (name, description, parameter names, enum values) and fills their
  arguments by each parameter's type and name: places ("in Paris and Tokyo" gives one
  call per place to a tool with one place parameter), enum values mentioned, numbers,
  ISO dates, an arithmetic expression, nested objects built by the same rules. A short
  reasoning streams before the calls.
- When the conversation ends with tool results, it answers with one sentence per call
  that names the call's arguments and the result's salient fields. A call rejected as
  `Invalid tool call: ...` is retried once with corrected arguments if it can be.
- A message no tool fits gets a short text answer saying it is the offline demo model.
- A request for typed output (`response_format` with a JSON schema, or the final-answer
  tool) is answered with a value built from the schema by the same rules, after any
  tool calls the question fits (see `_offline_output`, and its `x-agentstream-output`
  header for wrong answers, refusals and servers without `response_format`).
- `tool_choice`: `"none"` never calls a tool, `"required"` always calls one, a named
  function calls that one; `parallel_tool_calls: false` makes one call per turn.

Faults on request, for tests and resilience demos. Per request, with HTTP headers (the
`extra_headers` of an openai call or of an `Agent`)::

    x-agentstream-fault: status=429,retry_after=1
    x-agentstream-fault: drop_after=3
    x-agentstream-fault: error_after=5,message=overloaded, try again
    x-agentstream-dialect: mistral

`x-agentstream-fault` is a comma-separated list of `name=value` fields of `Fault`:
`status` (an HTTP status 400-599, answered before streaming), `retry_after` (seconds,
with `status`), `drop_after` / `malformed_after` / `error_after` / `stall_after` (counts
of stream chunks), `stall_seconds`, `no_done` (bare, or `=true`/`=false`) and `message`,
which must come last and takes the rest of the value, commas included.
`x-agentstream-dialect` is `openai` (the default), `mistral` (whole tool calls without
`index`, in the finish chunk) or `ollama` (whole calls, `finish_reason: "stop"`). A
header the model cannot read is answered with HTTP 400 saying why.

For the whole model, `offline_model(fault=Fault(status=503), fault_every=5)` acts out
the fault on every fifth chat completion (the 5th, 10th, ...); `fault` alone, on every
one. A header's fault wins over the model's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.abc

from ._faults import header_options
from ._model import ScriptedModel
from ._offline_answer import INVALID, describe_call, join
from ._offline_output import (
    FEEDBACK,
    FINAL_TOOL,
    TypedAsk,
    output_fault,
    typed_answer,
    typed_ask,
)
from ._plan import (
    Choice,
    PlannedCall,
    ToolSpec,
    choose_tools,
    plan_calls,
    read_tools,
    score,
    vocabulary_of,
)
from ._reply import Fault, Reply, ToolCall
from ._request import ModelRequest
from ._server import serve
from ._text import Message, read_message

__all__ = ["OFFLINE_MODEL_NAME", "offline_model", "offline_policy", "serve_model"]

OFFLINE_MODEL_NAME = "agentstream-offline"
"""The model id the offline model lists and answers as."""


def offline_policy(request: ModelRequest) -> Reply:
    """The offline model's answer to one chat completion request (see the module docs)."""
    body = request.body if isinstance(request.body, dict) else {}
    try:
        dialect, fault = header_options(request.headers)
        typed_fault = output_fault(request.headers, body)
    except ValueError as exc:
        return Reply(fault=Fault(status=400, message=str(exc)))
    if isinstance(typed_fault, Reply):
        return typed_fault
    ask = typed_ask(body)
    reply = _respond(request) if ask is None else _respond_typed(request, ask, typed_fault)
    return replace(reply, dialect=dialect, fault=fault or reply.fault)


def offline_model(
    *,
    ttft: float = 0.0,
    tokens_per_second: float | None = None,
    fault_every: int | None = None,
    fault: Fault | None = None,
) -> ScriptedModel:
    """A `ScriptedModel` answered by `offline_policy`, at the given pace.

    `fault` is acted out on every `fault_every`-th chat completion (every one if
    `fault_every` is None), for load and resilience tests.
    """
    if fault_every is not None and (fault is None or fault_every < 1):
        raise ValueError("fault_every needs a fault and must be >= 1")
    policy = offline_policy if fault is None else _EveryNth(fault, fault_every or 1)
    return ScriptedModel(
        policy, ttft=ttft, tokens_per_second=tokens_per_second, name=OFFLINE_MODEL_NAME
    )


async def serve_model(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ttft: float = 0.0,
    tokens_per_second: float | None = None,
    fault_every: int | None = None,
    fault: Fault | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `offline_model(...)` over HTTP until cancelled; reports the bound port.

    `port = await task_group.start(functools.partial(serve_model, port=0))`, then point
    a client at `http://{host}:{port}/v1`.
    """
    model = offline_model(
        ttft=ttft, tokens_per_second=tokens_per_second, fault_every=fault_every, fault=fault
    )
    await serve(model, host=host, port=port, task_status=task_status)


class _EveryNth:
    """The offline policy, acting out a fault on every n-th chat completion."""

    __slots__ = ("_count", "_every", "_fault")

    def __init__(self, fault: Fault, every: int) -> None:
        self._fault = fault
        self._every = every
        self._count = 0  # ScriptedModel calls its policy under its lock

    def __call__(self, request: ModelRequest) -> Reply:
        reply = offline_policy(request)
        self._count += 1
        if reply.fault is None and self._count % self._every == 0:
            return replace(reply, fault=self._fault)
        return reply


# --- the conversation --------------------------------------------------------------------


@dataclass(slots=True)
class _Done:
    """A tool call the model made since the last user message, and its result."""

    id: str
    name: str
    arguments: str
    result: str | None = None

    @property
    def invalid(self) -> bool:
        return self.result is not None and self.result.startswith(INVALID)

    @property
    def key(self) -> tuple[str, str]:
        return _key(self.name, _parse(self.arguments))


def _respond(request: ModelRequest) -> Reply:
    body = request.body if isinstance(request.body, dict) else {}
    specs = read_tools(request.tools)
    tool_choice = body.get("tool_choice", "auto")
    if isinstance(tool_choice, Mapping) and isinstance(tool_choice.get("name"), str):
        # The Responses API names the function at the top: {"type": "function", "name": ...}
        tool_choice = {"type": "function", "function": {"name": tool_choice["name"]}}
    wanted = _named_choice(tool_choice)
    if wanted is not None and wanted not in {spec.name for spec in specs}:
        error = f"tool_choice names the function {wanted!r}, which is not in tools"
        return Reply(fault=Fault(status=400, message=error))
    question, rounds = _read_conversation(request.messages)
    message = read_message(question, vocabulary_of(specs))
    parallel = body.get("parallel_tool_calls") is not False
    last = request.messages[-1] if request.messages else None
    if rounds and isinstance(last, Mapping) and last.get("role") == "tool":
        return _after_tools(specs, message, rounds, tool_choice, parallel)
    choices = choose_tools(specs, message, tool_choice)
    if not choices:
        return Reply(_no_tool_answer(specs, message, tool_choice))
    calls = plan_calls(choices, message)
    if not parallel:
        calls = calls[:1]
    return Reply(reasoning=_reasoning(message, choices, calls), tool_calls=_tool_calls(calls))


def _respond_typed(request: ModelRequest, ask: TypedAsk, fault: str | None) -> Reply:
    """Tools first where the question fits them, then the typed answer."""
    body = request.body if isinstance(request.body, dict) else {}
    specs = [spec for spec in read_tools(request.tools) if spec.name != FINAL_TOOL]
    tool_choice = body.get("tool_choice", "auto")
    if tool_choice == "required" or _named_choice(tool_choice) == FINAL_TOOL:
        tool_choice = "auto"  # the final answer is the call it requires
    question, rounds = _read_conversation(request.messages)
    message = read_message(question, vocabulary_of(specs))
    after = request.messages[_question_at(request.messages) + 1 :]
    last = request.messages[-1] if request.messages else None
    parallel = body.get("parallel_tool_calls") is not False
    retried = isinstance(last, Mapping) and last.get("role") == "user" and bool(after)
    if not retried and rounds and any(call.name != FINAL_TOOL for call in rounds[-1]):
        reply = _after_tools(specs, message, rounds, tool_choice, parallel)
        if reply.tool_calls:
            return reply
    elif not retried and not rounds:
        choices = choose_tools(specs, message, tool_choice)
        if choices:
            calls = plan_calls(choices, message)[: None if parallel else 1]
            reasoning = _reasoning(message, choices, calls)
            return Reply(reasoning=reasoning, tool_calls=_tool_calls(calls))
    return typed_answer(ask, message, after, fault)


def _question_at(messages: Sequence[Any]) -> int:
    """Where the user's last question is: the last user message that is not feedback."""
    return max(
        (
            i
            for i, m in enumerate(messages)
            if isinstance(m, Mapping)
            and m.get("role") == "user"
            and not str(m.get("content") or "").startswith(FEEDBACK)
        ),
        default=-1,
    )


def _read_conversation(messages: Sequence[Any]) -> tuple[str, list[list[_Done]]]:
    """The last user message's text, and the rounds of tool calls made since."""
    last_user = _question_at(messages)
    question = _text_of(messages[last_user].get("content")) if last_user >= 0 else ""
    rounds: list[list[_Done]] = []
    by_id: dict[str, _Done] = {}
    for message in messages[last_user + 1 :]:
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                done = _Done(
                    str(call.get("id")),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                )
                by_id[done.id] = done
                calls.append(done)
            rounds.append(calls)
        elif message.get("role") == "tool" and message.get("tool_call_id") in by_id:
            by_id[message["tool_call_id"]].result = _text_of(message.get("content"))
    return question, rounds


def _after_tools(
    specs: list[ToolSpec],
    message: Message,
    rounds: list[list[_Done]],
    tool_choice: Any,
    parallel: bool,
) -> Reply:
    done = [call for calls in rounds for call in calls]
    if tool_choice != "none":
        if len(rounds) == 1 and any(call.invalid for call in rounds[0]):
            retry = _retry(specs, message, done)
            if retry is not None:
                return retry
        planned = plan_calls(choose_tools(specs, message, tool_choice), message)
        if tool_choice == "required" or _named_choice(tool_choice) is not None:
            # A model forced to call tools keeps calling them; `max_steps` ends the run.
            return Reply(
                reasoning="A tool call is required again.", tool_calls=_tool_calls(planned)
            )
        made = {call.key for call in done}
        remaining = [p for p in planned if _key(p.name, p.arguments) not in made]
        if not parallel and remaining and len(rounds) < len(planned):
            reasoning = f"Next, one call at a time: {remaining[0].name}."
            return Reply(reasoning=reasoning, tool_calls=_tool_calls(remaining[:1]))
    return Reply(_summary(done))


def _retry(specs: list[ToolSpec], message: Message, done: list[_Done]) -> Reply | None:
    """Calls that correct the rejected ones, if the planner can do better than before."""
    by_name = {spec.name: spec for spec in specs}
    made = {call.key for call in done if not call.invalid}
    fixed: list[PlannedCall] = []
    rejected = [call for call in done if call.invalid]
    for call in rejected:
        spec = by_name.get(call.name)
        if spec is None and specs:  # an unknown tool: the best-fitting known one
            best = max((score(s, message) for s in specs), key=lambda c: c.score)
            spec = best.spec if best.score > 0 else None
        if spec is None:
            continue
        for candidate in plan_calls([score(spec, message)], message):
            key = _key(candidate.name, candidate.arguments)
            if key != call.key and key not in made:
                made.add(key)
                fixed.append(candidate)
                break
    if not fixed:
        return None
    reason = (rejected[0].result or "")[len(INVALID) :].strip()
    reasoning = (
        f"The call to {rejected[0].name} was rejected ({reason}); "
        f"trying again with corrected arguments."
    )
    return Reply(reasoning=reasoning, tool_calls=_tool_calls(fixed))


def _summary(done: list[_Done]) -> str:
    """One sentence per call, leaving out rejected calls that a later call replaced."""
    kept = [
        call
        for i, call in enumerate(done)
        if not (call.invalid and any(c.name == call.name and not c.invalid for c in done[i:]))
    ]
    lines = [
        describe_call(call.name, _parse(call.arguments), call.result, invalid=call.invalid)
        for call in kept
    ]
    if len(lines) == 1:
        return lines[0]
    return "Here is what I found:\n" + "\n".join(f"- {line}" for line in lines)


# --- text --------------------------------------------------------------------------------


def _reasoning(message: Message, choices: list[Choice], calls: list[PlannedCall]) -> str:
    parts: list[str] = []
    for choice in choices:
        spec = choice.spec
        words = list(dict.fromkeys(t.text.lower() for t in choice.matched))
        if message.expression and spec.takes_expression:
            words.append(message.expression)
        part = f"{spec.name} fits ({', '.join(words) or 'the request'})"
        mine = [c for c in calls if c.name == spec.name]
        if len(mine) > 1 and spec.place_params:
            places = [str(c.arguments.get(spec.place_params[0], "?")) for c in mine]
            part += f", one call each for {join(places)}"
        parts.append(part)
    question = message.text if len(message.text) <= 120 else message.text[:117] + "..."
    return f'The user asks: "{question}" ' + "; ".join(parts) + "."


def _no_tool_answer(specs: list[ToolSpec], message: Message, tool_choice: Any) -> str:
    words = message.text.lower().split()
    opening = "Hello! " if words and words[0].strip("!,.") in ("hi", "hello", "hey") else ""
    if words and words[0].strip("!,.") in ("thanks", "thank"):
        opening = "You're welcome! "
    me = "I'm the agentstream offline demo model"
    if not specs:
        return f"{opening}{me}: I answer by calling tools, and this conversation gives me none."
    best = max((score(spec, message) for spec in specs), key=lambda c: c.score)
    if tool_choice == "none" and best.score > 0:
        return (
            f"{opening}I would use {best.spec.name} for this, but tools are switched off for "
            f"this request, and as {me[4:]} I can only answer through them."
        )
    names = join([spec.name for spec in specs])
    return (
        f"{opening}{me}: I answer by calling the tools I'm given ({names}), and none of "
        f"them fits this question. Try asking for something one of them does."
    )


def _tool_calls(calls: Sequence[PlannedCall]) -> list[ToolCall]:
    return [ToolCall(call.name, call.arguments) for call in calls]


def _named_choice(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
        if isinstance(tool_choice.get("name"), str):  # the Responses API's shape
            return str(tool_choice["name"])
    return None


def _text_of(content: Any) -> str:
    """The text of a message's `content`: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text") for p in content if isinstance(p, Mapping))
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _parse(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _key(name: str, arguments: Any) -> tuple[str, str]:
    return name, json.dumps(arguments, sort_keys=True, default=str)
