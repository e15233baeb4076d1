"""Hostile tools: whatever a tool raises or returns, the caller gets a result or our own error."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import sys
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, field_validator

from agentstream import (
    Agent,
    RunFailed,
    Tool,
    ToolCallInvalid,
    ToolContext,
    ToolCrashed,
    ToolError,
    ToolFinished,
    event_to_dict,
    tool,
)
from agentstream._convert import CIRCULAR, TOO_DEEP, to_jsonable, tool_result_text
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import of, run_events

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # the backport anyio depends on
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found]

BACKENDS = ("asyncio", "trio")


def call_then_answer(name: str, arguments: dict[str, Any] | None = None) -> ScriptedModel:
    return ScriptedModel([Reply(tool_calls=[ToolCall(name, arguments or {})]), Reply("done")])


def told_to_model(model: ScriptedModel) -> str:
    """The tool message the model received in its second request."""
    content = model.requests[1].messages[-1]["content"]
    assert isinstance(content, str)
    return content


# --- a cancellation the run did not ask for is the tool's failure --------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [("asyncio", {})], ids=["asyncio"])
async def test_a_future_cancelled_by_someone_else_is_the_tools_failure() -> None:
    @tool
    async def waits() -> str:
        """Wait for a future that another component cancels."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        loop.call_soon(future.cancel)
        return await future

    model = call_then_answer("waits")
    events, run = await run_events(model, waits)
    (finished,) = of(events, ToolFinished)
    assert isinstance(finished.error, asyncio.CancelledError)
    assert "cancelled by something other than the run" in finished.output
    assert told_to_model(model) == finished.output
    assert run.result.output == "done"


@pytest.mark.anyio
async def test_a_stray_cancellation_from_a_scope_the_tool_left_is_the_tools_failure() -> None:
    @tool
    async def stray() -> str:
        """Re-raise a cancellation caught earlier in a scope of its own."""
        with anyio.CancelScope() as scope:
            scope.cancel()
            try:
                await anyio.sleep(1)
            except anyio.get_cancelled_exc_class() as exc:
                caught = exc
        raise caught

    model = call_then_answer("stray")
    events, run = await run_events(model, stray)
    (finished,) = of(events, ToolFinished)
    assert isinstance(finished.error, anyio.get_cancelled_exc_class())
    assert told_to_model(model).endswith("did not finish")
    assert run.result.output == "done"


@pytest.mark.anyio
async def test_cancelling_the_run_still_cancels_its_tools() -> None:
    started = anyio.Event()

    @tool
    async def forever() -> str:
        """Never finish."""
        started.set()
        await anyio.sleep_forever()
        return "never"

    agent = Agent(client=call_then_answer("forever").async_client(), model="m", tools=[forever])
    events: list[Any] = []

    async def run() -> None:
        async with agent.stream("go") as stream:
            async for event in stream:
                events.append(event)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await started.wait()
            group.cancel_scope.cancel()
    assert not of(events, ToolFinished)
    assert not of(events, RunFailed)


# --- exceptions --------------------------------------------------------------------------------


class BrokenMessage(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


class ExitingMessage(Exception):
    def __str__(self) -> str:
        raise SystemExit(1)


def tool_error_without_message() -> ToolError:
    error = ToolError("x")
    del error.message
    return error


class Custom(BaseException):
    """A BaseException that is neither a cancellation nor a request to stop."""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(BrokenMessage(), "BrokenMessage (its message could not be read)", id="str"),
        pytest.param(Custom("odd"), "Custom: odd", id="base-exception"),
        pytest.param(ExitingMessage(), "ExitingMessage (its message", id="str-exits"),
        pytest.param(ToolError(None), "None", id="tool-error-not-text"),  # type: ignore[arg-type]
        pytest.param(tool_error_without_message(), "ToolError: x", id="tool-error-broken"),
        pytest.param(GeneratorExit(), "GeneratorExit", id="generator-exit"),
        pytest.param(
            BaseExceptionGroup("g", [ValueError("a"), BrokenMessage()]),
            "ExceptionGroup: g (2 sub-exceptions): ValueError: a; BrokenMessage (its",
            id="group",
        ),
        pytest.param(asyncio.CancelledError(), "CancelledError", id="raised-cancel"),
    ],
)
async def test_whatever_a_tool_raises_goes_back_to_the_model(
    error: BaseException, expected: str
) -> None:
    @tool
    async def fails() -> str:
        """Fail."""
        raise error

    model = call_then_answer("fails")
    events, run = await run_events(model, fails)
    assert told_to_model(model).startswith(expected)
    assert of(events, ToolFinished)[0].error is error
    assert run.result.output == "done"


@pytest.mark.anyio
async def test_an_exception_group_from_the_tools_own_task_group_goes_back() -> None:
    @tool
    async def fans_out() -> str:
        """Run two failing children."""

        async def fail(n: int) -> None:
            raise KeyError(n)

        async with anyio.create_task_group() as group:
            group.start_soon(fail, 1)
            group.start_soon(fail, 2)
        return "never"

    model = call_then_answer("fans_out")
    _, run = await run_events(model, fans_out)
    assert "KeyError: 1" in told_to_model(model)
    assert run.result.output == "done"


@pytest.mark.anyio
async def test_a_generator_exit_from_a_sync_tools_thread_goes_back_to_the_model() -> None:
    # asyncio throws a thread's exception into the waiting coroutine; a GeneratorExit
    # thrown so would close the run's task group instead of reaching the tool's handler.
    @tool
    def leaves() -> str:
        """Raise GeneratorExit in a worker thread."""
        raise GeneratorExit

    model = call_then_answer("leaves")
    _, run = await run_events(model, leaves)
    assert told_to_model(model) == "GeneratorExit"
    assert run.result.output == "done"


def stops_with_system_exit() -> str:
    """Exit."""
    raise SystemExit(3)


async def stops_with_system_exit_async() -> str:
    """Exit."""
    raise SystemExit(4)


def interrupts_in_its_thread() -> str:
    """Raise KeyboardInterrupt in a worker thread, where no signal can land."""
    raise KeyboardInterrupt


@pytest.mark.anyio
@pytest.mark.parametrize(
    "function",
    [stops_with_system_exit, stops_with_system_exit_async, interrupts_in_its_thread],
    ids=["sync-exit", "async-exit", "thread-interrupt"],
)
async def test_a_tool_asking_the_program_to_stop_ends_the_run_with_tool_crashed(
    function: Any,
) -> None:
    made = tool(function)
    model = call_then_answer(made.name)
    agent = Agent(client=model.async_client(), model="m", tools=[made])
    events: list[Any] = []
    with pytest.raises(ToolCrashed, match=made.name) as caught:
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    assert isinstance(caught.value.__cause__, (SystemExit, KeyboardInterrupt))
    assert of(events, ToolFinished)[0].error is caught.value.__cause__
    assert of(events, RunFailed)[0].error is caught.value
    assert len(model.requests) == 1


@pytest.mark.anyio
async def test_a_crash_ends_the_run_right_after_its_tools_end_is_reported() -> None:
    # Both calls end before the run looks: their ends arrive together, and the run stops
    # once the crashed call's end is out, not after reporting what came later.
    @tool
    async def exits() -> str:
        """Exit."""
        raise SystemExit(3)

    @tool
    async def fine() -> str:
        """Answer."""
        return "fine"

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("exits", {}), ToolCall("fine", {})]), Reply("done")]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[exits, fine])
    events: list[Any] = []
    with pytest.raises(ToolCrashed, match="exits"):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    crashed = next(e for e in of(events, ToolFinished) if e.name == "exits")
    assert events[events.index(crashed) + 1 :] == of(events, RunFailed)
    assert len(model.requests) == 1


@pytest.mark.anyio
async def test_a_keyboard_interrupt_in_the_event_loop_stays_a_keyboard_interrupt() -> None:
    @tool
    async def ctrl_c() -> str:
        """Act as a Ctrl-C landing in an async tool."""
        raise KeyboardInterrupt

    agent = Agent(client=call_then_answer("ctrl_c").async_client(), model="m", tools=[ctrl_c])
    with pytest.raises(KeyboardInterrupt):
        await agent.run("go")


class Picky(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def lookup(cls, value: str) -> str:
        return {"known": value}[value]  # KeyError for anything else


@pytest.mark.anyio
async def test_a_validator_raising_key_error_is_an_invalid_call() -> None:
    @tool
    def greet(person: Picky) -> str:
        """Greet."""
        return f"hi {person.name}"

    model = call_then_answer("greet", {"name": "stranger"})
    events, run = await run_events(model, greet)
    (invalid,) = of(events, ToolCallInvalid)
    assert "KeyError" in invalid.error
    assert "KeyError" in told_to_model(model)
    assert run.result.output == "done"


@pytest.mark.anyio
async def test_arguments_too_deep_for_the_schema_check_are_an_invalid_call() -> None:
    recursive = {"type": "object", "additionalProperties": {"$ref": "#"}}
    deep = Tool.from_schema("deep", recursive, lambda arguments: "ran")
    arguments: dict[str, Any] = {}
    for _ in range(800):  # parses as JSON, but the check recurses past Python's limit
        arguments = {"a": arguments}
    model = call_then_answer("deep", arguments)
    events, run = await run_events(model, deep)
    assert "nested too deeply" in of(events, ToolCallInvalid)[0].error
    assert run.result.output == "done"


class Exits(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def leave(cls, value: str) -> str:
        raise SystemExit(1)


@pytest.mark.anyio
async def test_a_validator_raising_system_exit_ends_the_run_with_tool_crashed() -> None:
    @tool
    def greet(person: Exits) -> str:
        """Greet."""
        return person.name

    agent = Agent(
        client=call_then_answer("greet", {"name": "x"}).async_client(), model="m", tools=[greet]
    )
    with pytest.raises(ToolCrashed, match="validator"):
        await agent.run("go")


def _group(items: list[BaseException]) -> BaseException:
    group: BaseException = BaseExceptionGroup("group", items)
    return group


# Hostile exceptions of every shape: leaves of many kinds, nested in groups.
_MAKERS: list[Callable[[], BaseException]] = [
    lambda: ValueError("v"),
    lambda: KeyError("k"),
    lambda: RecursionError("deep"),
    lambda: UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    lambda: BrokenMessage(),
    lambda: Custom("custom"),
    lambda: GeneratorExit(),
    lambda: asyncio.CancelledError(),
    lambda: SystemExit(2),
    lambda: KeyboardInterrupt(),
    lambda: ValueError("\ud800 lone surrogate"),
    lambda: ValueError("x" * 100_000),
]
_LEAVES = st.sampled_from(_MAKERS).map(lambda make: make())
_ERRORS = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, min_size=1, max_size=3).map(_group),
    max_leaves=6,
)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for sub in error.exceptions for leaf in _leaves(sub)]
    return [error]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(error=_ERRORS, in_thread=st.booleans(), backend=st.sampled_from(BACKENDS))
def test_no_foreign_exception_reaches_the_caller(
    error: BaseException, in_thread: bool, backend: str
) -> None:
    def raise_it() -> str:
        raise error

    async def raise_it_async() -> str:
        raise error

    made = tool(raise_it if in_thread else raise_it_async, name="hostile")
    model = call_then_answer("hostile")
    agent = Agent(client=model.async_client(), model="m", tools=[made])
    leaves = _leaves(error)
    # A KeyboardInterrupt in the event loop's thread is a Ctrl-C and goes first.
    ctrl_c = not in_thread and any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves)
    stops = not ctrl_c and any(isinstance(leaf, (SystemExit, KeyboardInterrupt)) for leaf in leaves)
    try:
        result = anyio.run(agent.run, "go", backend=backend)
    except ToolCrashed:
        assert stops
    except KeyboardInterrupt:
        assert ctrl_c
    else:
        assert not stops
        assert not ctrl_c
        assert result.output == "done"
        told = told_to_model(model)
        told.encode("utf-8")  # sendable: no lone surrogate
        assert 0 < len(told) <= 2100


def test_a_group_nested_thousands_deep_is_described_without_recursion() -> None:
    error: BaseException = ValueError("bottom")
    for _ in range(5000):
        error = BaseExceptionGroup("level", [error])

    @tool
    async def deep() -> str:
        """Raise a very deep group."""
        raise error

    model = call_then_answer("deep")
    agent = Agent(client=model.async_client(), model="m", tools=[deep])
    assert anyio.run(agent.run, "go").output == "done"
    assert told_to_model(model).startswith("ExceptionGroup: level (1 sub-exception)")


# --- results -----------------------------------------------------------------------------------


class Mood(enum.Enum):
    HAPPY = "happy"


@dataclasses.dataclass
class Point:
    x: int
    y: Any = None


class Model(BaseModel):
    name: str
    data: Any = None


def circular_dict() -> dict[str, Any]:
    data: dict[str, Any] = {"name": "loop"}
    data["self"] = data
    return data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(b"caf\xc3\xa9 \xff", "café \ufffd", id="bytes-top-level"),
        pytest.param({"b": b"\xff"}, '{"b":"\ufffd"}', id="bytes-inside"),
        pytest.param({3, 1, 2}, "[1,2,3]", id="set-sorted"),
        pytest.param(frozenset({"b", "a"}), '["a","b"]', id="frozenset"),
        pytest.param({1, "a"}, None, id="set-unsortable"),
        pytest.param({(1, 2): "t", 3: "i", None: "n", True: "b"}, None, id="odd-keys"),
        pytest.param(decimal.Decimal("1.10"), '"1.10"', id="decimal"),
        pytest.param(pathlib.PurePosixPath("/tmp/x"), '"/tmp/x"', id="path"),
        pytest.param(uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"', id="uuid"),
        pytest.param(dt.timedelta(seconds=90), '"PT1M30S"', id="timedelta"),
        pytest.param(Mood.HAPPY, '"happy"', id="enum"),
        pytest.param(Point(1, Point(2)), '{"x":1,"y":{"x":2,"y":null}}', id="dataclass"),
        pytest.param(Model(name="m", data={1, 2}), '{"name":"m","data":[1,2]}', id="model"),
        pytest.param(circular_dict(), f'{{"name":"loop","self":"{CIRCULAR}"}}', id="circular"),
        pytest.param(10**5000, '"[an integer of 16610 bits]"', id="huge-int"),
        pytest.param("\ud800 name", "\ufffd name", id="lone-surrogate"),
        pytest.param(["\udcff"], '["\ufffd"]', id="surrogate-inside"),
        pytest.param(ValueError("nope"), '{"type":"ValueError","message":"nope"}', id="exception"),
        pytest.param(iter(int, 1), None, id="endless-iterator"),
    ],
)
def test_tool_result_conversion(value: Any, expected: str | None) -> None:
    text = tool_result_text(value)
    text.encode("utf-8")
    if expected is not None:
        assert text == expected
    elif not isinstance(value, (str, bytes)):
        json.loads(text)


def test_a_model_with_circular_data_inside_falls_back_to_its_fields() -> None:
    text = tool_result_text(Model(name="m", data=circular_dict()))
    assert json.loads(text) == {"name": "m", "data": {"name": "loop", "self": CIRCULAR}}


@pytest.mark.parametrize("kind", [list, tuple, lambda inner: {"k": inner}])
def test_nesting_thousands_deep_is_cut_with_a_marker(kind: Any) -> None:
    value: Any = 1
    for _ in range(5000):
        value = kind(value) if kind is not list and kind is not tuple else kind([value])
    text = tool_result_text(value)
    assert TOO_DEEP in text
    assert json.loads(text)


def test_shared_references_cannot_blow_up_the_work() -> None:
    value: list[Any] = ["x" * 1000]
    for _ in range(64):
        value = [value, value]  # 2**64 paths through 65 objects
    text = tool_result_text(value)
    assert len(text) < 30_000_000
    assert "[omitted: the value is too large]" in text


def test_a_model_holding_shared_references_is_bounded_too() -> None:
    value: list[Any] = ["x"]
    for _ in range(64):
        value = [value, value]
    text = tool_result_text(Model(name="m", data=value))  # pydantic's dump would not end
    assert text.startswith('{"name":"m","data":[[')
    assert "[omitted: the value is too large]" in text


_HOSTILE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.decimals()
    | st.datetimes()
    | st.sampled_from(list(Mood))
    | st.just("\ud800")
    | st.integers(min_value=4400, max_value=6000).map(lambda digits: 10**digits),
    lambda inner: (
        st.lists(inner)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text())
        | st.dictionaries(st.text() | st.integers() | st.booleans(), inner)
        | st.builds(Point, inner, inner)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=_HOSTILE, cycle=st.booleans())
def test_any_result_converts_and_serialises(value: Any, cycle: bool) -> None:
    if cycle:
        holder: dict[str, Any] = {"value": value}
        holder["again"] = holder
        value = holder
    text = tool_result_text(value)
    text.encode("utf-8")
    if not isinstance(value, (str, bytes)):
        json.loads(text)
    event = ToolFinished(1, 0, "c", "t", text, value, None, 0.0)
    json.dumps(event_to_dict(event), ensure_ascii=False).encode("utf-8")


def test_event_to_dict_survives_a_circular_tool_result_and_hides_tracebacks() -> None:
    try:
        raise ValueError("broken")
    except ValueError as exc:
        error = exc
    event = ToolFinished(1, 0, "c", "t", "out", circular_dict(), error, 0.1)
    data = event_to_dict(event)
    assert data["value"] == {"name": "loop", "self": CIRCULAR}
    assert data["error"] == {"type": "ValueError", "message": "broken"}
    json.dumps(data)
    assert "Traceback" in event_to_dict(event, tracebacks=True)["error"]["traceback"]


def test_to_jsonable_keeps_plain_data_as_it_is() -> None:
    data = {"a": [1, 2.5, None, True, "x"], "b": {"c": []}}
    assert to_jsonable(data) == data


# --- a tool sees copies ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_tool_editing_its_context_cannot_change_the_conversation() -> None:
    @tool
    def vandal(ctx: ToolContext) -> str:
        """Edit everything the context hands over."""
        for message in ctx.messages:
            message["content"] = "EDITED"
            for call in message.get("tool_calls") or ():
                call["function"]["arguments"] = "EDITED"
        ctx.messages[0].clear()
        return "ok"

    model = call_then_answer("vandal")
    _, run = await run_events(model, vandal)
    sent = model.requests[1].messages
    assert sent[0] == {"role": "user", "content": "go"}
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert "EDITED" not in json.dumps(run.result.messages)


def test_tool_context_copies_once_per_context() -> None:
    conversation = [{"role": "user", "content": "hi", "parts": [{"text": "x"}]}]
    ctx = ToolContext("r", "c", "t", 1, conversation)
    first = ctx.messages
    assert first is ctx.messages  # copied on the first read, then kept
    first[0]["parts"][0]["text"] = "changed"
    assert conversation[0]["parts"] == [{"text": "x"}]
