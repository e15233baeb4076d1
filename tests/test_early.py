"""Early starts: a tool begins when its own call is final, and broken steps still hold.

The run-level cases drive the real `openai` client over the scripted model's SSE, with
raw chunks where the shape of the stream matters (trailing text, fragmenting) and
`Fault`s for broken attempts.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstream import (
    Agent,
    Retries,
    StepFinished,
    StepInterrupted,
    StreamAssembler,
    TextDelta,
    Timeouts,
    Tool,
    ToolCallDelta,
    ToolCallReady,
    ToolCancelled,
    ToolContext,
    ToolDefinitionError,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    event_to_dict,
    tool,
)
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall

from ._helpers import of

FAST = Retries(backoff=0.001, max_backoff=0.002)
WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]


class Log:
    """Early tools that record every run: the arguments each got, and how it started."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any], bool]] = []

        @tool(early=True)
        async def look(query: str, ctx: ToolContext) -> str:
            """Look something up."""
            self.runs.append(("look", {"query": query}, ctx.early))
            await anyio.sleep(0)
            return f"found {query}"

        @tool(early=True, idempotent=True)
        async def read(key: str, ctx: ToolContext) -> str:
            """Read a value."""
            self.runs.append(("read", {"key": key}, ctx.early))
            return f"value of {key}"

        @tool
        async def write(key: str) -> str:
            """Write a value (never early)."""
            self.runs.append(("write", {"key": key}, False))
            return "written"

        self.tools = [look, read, write]

    def count(self, name: str) -> int:
        return sum(1 for run in self.runs if run[0] == name)


def openai_chunks(
    calls: list[tuple[str, str]],
    *,
    pieces: list[list[str]] | None = None,
    trailing: list[str] = (),  # type: ignore[assignment]
    finish: str = "tool_calls",
) -> list[dict[str, Any]]:
    """An OpenAI-shaped stream: each call header then its argument pieces, then text."""

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    out = [chunk({"role": "assistant", "content": None})]
    for index, (name, arguments) in enumerate(calls):
        header = {"index": index, "id": f"id_{index}", "type": "function"}
        out.append(chunk({"tool_calls": [{**header, "function": {"name": name, "arguments": ""}}]}))
        parts = (
            pieces[index] if pieces else [arguments[i : i + 4] for i in range(0, len(arguments), 4)]
        )
        for piece in parts:
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    out += [chunk({"content": word}) for word in trailing]
    out.append(chunk({}, finish))
    return out


def responses_stream(
    calls: list[tuple[str, str]],
    *,
    pieces: list[list[str]] | None = None,
    trailing: list[str] = (),  # type: ignore[assignment]
) -> list[dict[str, Any]]:
    """The same turn as `openai_chunks` on the Responses API: each `function_call` item
    with its argument pieces and its `.done` events, then a message with the text."""
    out: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        out.append({"type": kind, "sequence_number": len(out), **fields})

    head = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    emit("response.created", response=head)
    output: list[dict[str, Any]] = []
    for index, (name, arguments) in enumerate(calls):
        item = {"type": "function_call", "id": f"fc_{index}", "call_id": f"id_{index}",
                "name": name, "arguments": "", "status": "in_progress"}  # fmt: skip
        emit("response.output_item.added", output_index=index, item=item)
        parts = (
            pieces[index] if pieces else [arguments[i : i + 4] for i in range(0, len(arguments), 4)]
        )
        for piece in parts:
            emit("response.function_call_arguments.delta", output_index=index, delta=piece)
        emit("response.function_call_arguments.done", output_index=index, arguments=arguments)
        done = {**item, "arguments": arguments, "status": "completed"}
        emit("response.output_item.done", output_index=index, item=done)
        output.append(done)
    if trailing:
        index = len(calls)
        message: dict[str, Any] = {"type": "message", "id": "msg", "role": "assistant"}
        emit("response.output_item.added", output_index=index, item={**message, "content": []})
        for word in trailing:
            emit("response.output_text.delta", output_index=index, content_index=0, delta=word)
        text: dict[str, Any] = {"type": "output_text", "text": "".join(trailing)}
        closed = {**message, "content": [text], "status": "completed"}
        emit("response.output_item.done", output_index=index, item=closed)
        output.append(closed)
    emit("response.completed", response={**head, "status": "completed", "output": output})
    return out


def turn(wire: str, calls: list[tuple[str, str]], **options: Any) -> list[dict[str, Any]]:
    """A turn with these calls on `wire` (`chat` or `responses`)."""
    return (responses_stream if wire == "responses" else openai_chunks)(calls, **options)


async def run_events(
    model: ScriptedModel, tools: list[Tool], **options: Any
) -> tuple[list[Any], Any]:
    options.setdefault("retries", FAST)
    options.setdefault("early_tools", True)
    agent = Agent(client=model.async_client(), model="m", tools=tools, **options)
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    return events, run


def settled_after(calls: list[tuple[str, str]], count: int) -> int:
    """Chunks up to the header of call `count`: the calls before it are final then."""
    return len(openai_chunks(calls[:count]))  # the finish chunk stands for that header


def position(events: list[Any], kind: type, **fields: Any) -> int:
    for number, event in enumerate(events):
        if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
            return number
    raise AssertionError(f"no {kind.__name__} with {fields}")


def last_delta(events: list[Any], index: int) -> int:
    return max(n for n, e in enumerate(events) if isinstance(e, ToolCallDelta) and e.index == index)


def tool_messages(run: Any) -> list[dict[str, Any]]:
    return [m for m in run.messages if m["role"] == "tool"]


# --- the assembler says when a call is final ---------------------------------------------


def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}


def fragment(index: int | None, **fields: Any) -> dict[str, Any]:
    return chunk({"tool_calls": [{**({} if index is None else {"index": index}), **fields}]})


def test_a_call_is_final_once_the_stream_moves_past_it() -> None:
    assembler = StreamAssembler()
    assembler.feed(fragment(0, id="a", function={"name": "f", "arguments": '{"x":'}))
    assert assembler.settled() == []
    assembler.feed(fragment(0, function={"arguments": "1}"}))
    assert assembler.settled() == []  # closed, but the stream has not moved on
    assembler.feed(fragment(1, id="b", function={"name": "g", "arguments": "{}"}))
    [first] = assembler.settled()
    assert (first.index, first.id, first.name, first.arguments) == (0, "a", "f", '{"x":1}')
    assert assembler.settled() == []  # reported once
    assembler.feed(chunk({"content": "done"}))
    [second] = assembler.settled()
    assert second.index == 1
    assembler.feed(chunk({}, "tool_calls"))
    assert assembler.settled() == []
    assert [c.arguments for c in assembler.finish().message.tool_calls] == ['{"x":1}', "{}"]


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param('{"x": NaN}', id="nan"),
        pytest.param('{"x": 1}}', id="trailing-brace"),
        pytest.param('{"x": 1', id="open"),
        pytest.param("[1, 2]", id="not-an-object"),
        pytest.param("", id="blank-before-the-finish"),
    ],
)
def test_arguments_that_are_not_one_strict_object_never_settle(arguments: str) -> None:
    assembler = StreamAssembler()
    assembler.feed(fragment(0, id="a", function={"name": "f", "arguments": arguments}))
    assembler.feed(fragment(1, id="b", function={"name": "g", "arguments": ""}))
    assert assembler.settled() == []


def test_without_an_index_nothing_settles_before_the_finish() -> None:
    assembler = StreamAssembler()
    assembler.feed(fragment(None, id="a", function={"name": "f", "arguments": '{"x":1}'}))
    assembler.feed(fragment(None, id="b", function={"name": "g", "arguments": '{"y":2}'}))
    assembler.feed(chunk({"content": "text"}))
    assert assembler.settled() == []
    assembler.feed(chunk({}, "tool_calls"))
    assert [c.id for c in assembler.settled()] == ["a", "b"]


def test_a_repeated_id_at_a_new_index_is_a_new_call_and_moves_past() -> None:
    # A new index is a new call whatever its id (servers reuse ids across parallel
    # calls): the first call can no longer change, and the new one is its own.
    assembler = StreamAssembler()
    assembler.feed(fragment(0, id="a", function={"name": "f", "arguments": '{"x":1}'}))
    assembler.feed(fragment(1, id="a", function={"arguments": " "}))
    [settled] = assembler.settled()
    assert (settled.index, settled.arguments) == (0, '{"x":1}')
    calls = assembler.finish().message.tool_calls
    assert [call.index for call in calls] == [0, 1]
    assert calls[0].arguments == '{"x":1}'


def test_a_call_with_no_id_gets_the_one_finish_reports() -> None:
    assembler = StreamAssembler()
    assembler.feed(fragment(0, function={"name": "f", "arguments": "{}"}))
    assembler.feed(chunk({"content": "x"}))
    [settled] = assembler.settled()
    assert settled.id_generated
    assert assembler.finish().message.tool_calls[0].id == settled.id


texts = st.lists(st.sampled_from(["a", " b", "c.", " "]), max_size=3)


@st.composite
def fragmented_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int]:
    """Calls (with or without index) cut at any points, text anywhere, a finish or not."""
    indexed = draw(st.booleans())
    count = draw(st.integers(1, 4))
    chunks: list[dict[str, Any]] = []
    for index in range(count):
        arguments = json.dumps({"q": draw(st.text(max_size=6)), "n": draw(st.integers())})
        points = sorted(draw(st.lists(st.integers(0, len(arguments)), max_size=5)))
        cuts = [arguments[a:b] for a, b in itertools.pairwise([0, *points, len(arguments)])]
        head: dict[str, Any] = {"id": f"id_{index}", "function": {"name": f"t{index}"}}
        chunks.append(fragment(index if indexed else None, **head))
        for piece in cuts:
            chunks.append(fragment(index if indexed else None, function={"arguments": piece}))
            chunks += [chunk({"content": t}) for t in draw(texts)]
    if draw(st.booleans()):
        chunks.append(chunk({}, "tool_calls"))
    return chunks, count


@given(fragmented_streams())
def test_a_settled_call_never_changes_afterwards(stream: tuple[list[dict[str, Any]], int]) -> None:
    chunks, _ = stream
    assembler = StreamAssembler()
    settled: dict[int, str] = {}
    for item in chunks:
        for event in assembler.feed(item):
            if isinstance(event, ToolCallDelta):
                assert event.index not in settled, "a piece came for a call already final"
        for call in assembler.settled():
            json.loads(call.arguments)
            settled[call.index] = call.arguments
    final = {c.index: c.arguments for c in assembler.finish().message.tool_calls}
    for index, arguments in settled.items():
        assert final[index] == arguments


# --- early starts in a run --------------------------------------------------------------


def final_after(wire: str, calls: list[tuple[str, str]], count: int) -> int:
    """Events (or chunks) up to the moment the first `count` calls are final."""
    if wire == "chat":
        return settled_after(calls, count)
    stream = responses_stream(calls)
    done = [n for n, e in enumerate(stream) if e["type"] == "response.output_item.done"]
    return done[count - 1] + 1


@pytest.mark.anyio
@pytest.mark.parametrize("wire", WIRES)
async def test_a_call_starts_while_the_response_still_streams(wire: str) -> None:
    log = Log()
    calls = [("look", '{"query": "flights"}'), ("look", '{"query": "hotels"}')]
    # The stall comes once the first call is final (chat: the second call opened).
    reply = Reply(
        chunks=turn(wire, calls, trailing=["ok"]),
        fault=Fault(stall_after=final_after(wire, calls, 1), stall_seconds=0.3),
    )
    model = ScriptedModel([reply, Reply("done")])
    events, run = await run_events(model, log.tools, api=wire)

    started = position(events, ToolStarted, index=0)
    assert started < last_delta(events, 1)
    assert position(events, ToolCallReady, index=0) < started
    assert [r[2] for r in log.runs] == [True, True]  # both told they started early
    assert log.count("look") == 2
    assert [m["content"] for m in tool_messages(run)] == ["found flights", "found hotels"]
    assert run.result.output == "done"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("early_tools", "early"),
    [pytest.param(False, True, id="agent-not-opted-in"), pytest.param(True, False, id="tool-not")],
)
async def test_nothing_starts_early_without_both_opting_in(early_tools: bool, early: bool) -> None:
    ran: list[bool] = []

    @tool(early=early)
    async def look(query: str, ctx: ToolContext) -> str:
        """Look."""
        ran.append(ctx.early)
        return query

    calls = [("look", '{"query": "a"}'), ("look", '{"query": "b"}')]
    model = ScriptedModel([Reply(chunks=openai_chunks(calls, trailing=["x"])), Reply("done")])
    events, _ = await run_events(model, [look], early_tools=early_tools)
    assert ran == [False, False]
    assert position(events, ToolStarted, index=0) > position(events, TextDelta)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "rule",
    [pytest.param(True, id="always"), pytest.param(lambda args, ctx: False, id="per-call-rule")],
)
async def test_a_tool_that_needs_approval_never_starts_early(rule: Any) -> None:
    ran: list[bool] = []

    def handler(args: dict[str, Any], ctx: ToolContext) -> str:
        ran.append(ctx.early)
        return "ok"

    guarded = Tool.from_schema(
        "guarded", {"type": "object"}, handler, early=True, needs_approval=rule
    )
    calls = [("guarded", "{}"), ("guarded", "{}")]
    model = ScriptedModel([Reply(chunks=openai_chunks(calls, trailing=["x"])), Reply("done")])
    events, _ = await run_events(model, [guarded], approver=lambda request: True)
    assert ran == [False, False]
    assert position(events, ToolStarted, index=0) > position(events, TextDelta)


@pytest.mark.anyio
async def test_an_invalid_or_unknown_call_does_not_start_early() -> None:
    log = Log()
    calls = [("look", '{"query": 5}'), ("nope", "{}"), ("look", '{"query": "ok"}')]
    model = ScriptedModel([Reply(chunks=openai_chunks(calls, trailing=["x"])), Reply("done")])
    _events, run = await run_events(model, log.tools)
    assert log.runs == [("look", {"query": "ok"}, True)]
    contents = [m["content"] for m in tool_messages(run)]
    assert contents[0].startswith("Invalid tool call")
    assert contents[2] == "found ok"


@pytest.mark.anyio
async def test_results_follow_call_order_and_finished_events_completion_order() -> None:
    gate = anyio.Event()

    @tool(early=True)
    async def slow() -> str:
        """Wait for the fast one."""
        await gate.wait()
        return "slow"

    @tool(early=True)
    async def fast() -> str:
        """Return at once."""
        gate.set()
        return "fast"

    calls = [("slow", "{}"), ("fast", "{}")]
    model = ScriptedModel([Reply(chunks=openai_chunks(calls, trailing=["x"])), Reply("done")])
    events, run = await run_events(model, [slow, fast])
    assert [e.name for e in of(events, ToolFinished)] == ["fast", "slow"]
    assert [m["content"] for m in tool_messages(run)] == ["slow", "fast"]


def test_an_early_tool_must_be_concurrent() -> None:
    with pytest.raises(ToolDefinitionError, match="early"):

        @tool(early=True, concurrent=False)
        def f() -> None:
            """F."""


# --- the fragmenting of a response never starts a call before it is final -----------------


@st.composite
def scripted(draw: st.DrawFn, wire: str = "chat") -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    calls, pieces = [], []
    for _ in range(count):
        arguments = json.dumps({"query": draw(st.text('abc {}",:', max_size=6))})
        points = sorted(draw(st.lists(st.integers(1, len(arguments) - 1), max_size=4)))
        bounds = [0, *points, len(arguments)]
        calls.append(("look", arguments))
        pieces.append([arguments[a:b] for a, b in itertools.pairwise(bounds) if b > a])
    trailing = draw(st.lists(st.sampled_from(["so", " then"]), max_size=2))
    return turn(wire, calls, pieces=pieces, trailing=trailing)


@pytest.mark.anyio
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.parametrize("wire", WIRES)
@given(data=st.data())
async def test_whatever_the_fragmenting_a_call_starts_only_once_final(
    anyio_backend: Any, wire: str, data: st.DataObject
) -> None:
    chunks = data.draw(scripted(wire))
    log = Log()
    model = ScriptedModel([Reply(chunks=chunks), Reply("done")])
    events, _ = await run_events(model, log.tools, api=wire)
    ready = {e.index: e.arguments for e in of(events, ToolCallReady)}
    started = list(of(events, ToolStarted))
    assert [args for _, args, _ in log.runs] == [ready[e.index] for e in started]
    for event in started:
        assert position(events, ToolStarted, index=event.index) > last_delta(events, event.index)
    assert len(log.runs) == len(ready)  # each call ran once


# --- broken steps -----------------------------------------------------------------------


CALLS = [("look", '{"query": "a"}'), ("look", '{"query": "b"}'), ("write", '{"key": "k"}')]


def broken(kind: str, settled: int) -> Fault:
    """A fault that breaks an attempt once `settled` chunks (or events) have come; a
    short stall first, so that the early call is running when the attempt breaks."""
    if kind == "cut-stream":
        return Fault(stall_after=settled, stall_seconds=0.2, drop_after=settled + 1)
    if kind == "error-event":
        return Fault(stall_after=settled, stall_seconds=0.2, error_after=settled + 1)
    return Fault(stall_after=settled + 1, stall_seconds=30)


@pytest.mark.anyio
@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(
    ("kind", "options"),
    [
        pytest.param("cut-stream", {}, id="cut-stream"),
        pytest.param("error-event", {}, id="error-event"),
        pytest.param("stall", {"timeouts": Timeouts(idle=0.3)}, id="stall"),
    ],
)
async def test_a_broken_attempt_withdraws_its_early_calls(
    kind: str, options: dict[str, Any], wire: str
) -> None:
    runs: list[str] = []
    fault = broken(kind, final_after(wire, CALLS[:2], 1))
    first = Reply(chunks=turn(wire, CALLS[:2], trailing=["x"]), fault=fault)
    whole = Reply(chunks=turn(wire, CALLS[:2], trailing=["x"]))
    model = ScriptedModel([first, whole, Reply("done")])

    @tool(early=True)
    async def look(query: str) -> str:
        """Look (never returns in the first attempt)."""
        runs.append(query)
        if len(model.requests) == 1:
            await anyio.sleep_forever()  # still running when the attempt breaks: cancelled
        return f"found {query}"

    events, run = await run_events(model, [look], api=wire, **options)

    [cancelled] = of(events, ToolCancelled)
    assert (cancelled.index, cancelled.finished) == (0, False)
    assert "failed" in cancelled.reason
    assert position(events, ToolCancelled) < position(events, StepInterrupted)
    assert not any(isinstance(e, ToolFinished) and e.step == 1 and e.output == "found a"
                   for e in events[: position(events, StepInterrupted)])  # fmt: skip
    assert runs == ["a", "a", "b"]  # the withdrawn run, then once per call of the retry
    assert [m["content"] for m in tool_messages(run)] == ["found a", "found b"]
    assert len(model.requests) == 3


@pytest.mark.anyio
async def test_length_withdraws_early_calls_and_runs_nothing() -> None:
    log = Log()
    chunks = openai_chunks(CALLS[:2], finish="length")
    events, run = await run_events(ScriptedModel([Reply(chunks=chunks)]), log.tools)
    assert log.count("look") >= 1  # the first call started early
    [cancelled] = of(events, ToolCancelled)
    assert cancelled.index == 0
    assert "token limit" in cancelled.reason
    assert all(m["content"].startswith("Invalid tool call: not run") for m in tool_messages(run))
    assert run.result.stop_reason == "length"


@pytest.mark.anyio
@pytest.mark.parametrize("wire", WIRES)
async def test_a_retry_reuses_an_idempotent_result_and_reruns_the_others(wire: str) -> None:
    log = Log()
    calls = [("read", '{"key": "k"}'), ("look", '{"query": "q"}'), ("write", '{"key": "k"}')]
    # Both early calls are final (and finish) during the stall; then the stream is cut.
    settled = final_after(wire, calls, 2)
    fault = Fault(stall_after=settled, stall_seconds=0.3, drop_after=settled + 1)
    first = Reply(chunks=turn(wire, calls, trailing=["x"]), fault=fault)
    whole = Reply(chunks=turn(wire, calls, trailing=["x"]))
    model = ScriptedModel([first, whole, Reply("done")])
    events, run = await run_events(model, log.tools, api=wire)

    assert sorted((c.index, c.finished) for c in of(events, ToolCancelled)) == [
        (0, True),
        (1, True),
    ]
    assert log.count("read") == 1  # reused on the retry
    assert log.count("look") == 2  # not idempotent: its first result was never sent
    assert log.count("write") == 1
    reused = [e for e in of(events, ToolFinished) if e.reused]
    assert [e.name for e in reused] == ["read"]
    assert [m["content"] for m in tool_messages(run)] == ["value of k", "found q", "written"]


@pytest.mark.anyio
async def test_a_call_never_runs_twice_in_a_step() -> None:
    log = Log()
    calls = [("look", '{"query": "a"}'), ("read", '{"key": "b"}'), ("write", '{"key": "c"}')]
    model = ScriptedModel([Reply(chunks=openai_chunks(calls, trailing=["x"])), Reply("done")])
    events, run = await run_events(model, log.tools)
    assert [r[0] for r in log.runs].count("look") == 1
    assert len(of(events, ToolStarted)) == 3
    assert len(of(events, ToolCallReady)) == 3
    [asked] = [m for m in run.messages if m.get("tool_calls")]
    ids = [c["id"] for c in asked["tool_calls"]]
    assert ids == [e.id for e in sorted(of(events, ToolStarted), key=lambda e: e.index)]
    assert not of(events, ToolCancelled)


@pytest.mark.anyio
async def test_repeated_server_ids_stay_unique_with_early_starts() -> None:
    log = Log()
    chunks = openai_chunks([("look", '{"query": "a"}'), ("look", '{"query": "b"}')], trailing=["x"])
    # The server numbers its calls the same way in every response.
    model = ScriptedModel([Reply(chunks=chunks), Reply(chunks=chunks), Reply("done")])
    events, run = await run_events(model, log.tools)
    ids = [m["tool_call_id"] for m in tool_messages(run)]
    assert len(set(ids)) == 4
    assert ids[:2] == ["id_0", "id_1"]
    assert log.count("look") == 4
    asked = [c["id"] for m in run.messages if m.get("tool_calls") for c in m["tool_calls"]]
    assert asked == ids
    assert sorted(e.id for e in of(events, ToolStarted)) == sorted(ids)


# --- progress ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_progress_is_coalesced_in_order_and_the_last_report_arrives() -> None:
    @tool
    async def crunch(ctx: ToolContext) -> str:
        """Crunch."""
        for step in range(1, 201):
            ctx.progress(step / 200, f"{step} of 200")  # no await between: coalesced
            if step % 50 == 0:
                await anyio.sleep(0.01)
        return "done"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("crunch")]), Reply("ok")])
    events, _ = await run_events(model, [crunch], early_tools=False)
    progress = of(events, ToolProgress)
    fractions = [e.fraction for e in progress]
    assert 1 <= len(progress) < 200
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert progress[-1].message == "200 of 200"
    assert position(events, ToolProgress, fraction=1.0) < position(events, ToolFinished)
    assert event_to_dict(progress[-1])["type"] == "tool_progress"


@pytest.mark.anyio
async def test_a_sync_tool_reports_progress_from_its_thread() -> None:
    @tool(early=True)
    def fetch(ctx: ToolContext) -> str:
        """Fetch in a worker thread."""
        for part in range(1, 4):
            ctx.progress(part / 3, output="x" * part)
            anyio.from_thread.run_sync(lambda: None)  # a hop to the loop, like real I/O would
        return "fetched"

    model = ScriptedModel(
        [
            Reply(chunks=openai_chunks([("fetch", "{}"), ("fetch", "{}")], trailing=["x"])),
            Reply("ok"),
        ]
    )
    events, _ = await run_events(model, [fetch])
    for index in (0, 1):
        mine = [e for e in of(events, ToolProgress) if e.index == index]
        assert mine
        assert mine[-1].output == "xxx"
        assert position(events, ToolProgress, index=index, output="xxx") < position(
            events, ToolFinished, index=index
        )


def test_progress_refuses_a_fraction_out_of_range() -> None:
    ctx = ToolContext("r", "c", "t", 1, ())
    ctx.progress(0.5, "fine without a run")
    with pytest.raises(ValueError, match="fraction"):
        ctx.progress(1.5)


@pytest.mark.anyio
async def test_step_finished_comes_after_every_early_tool() -> None:
    log = Log()
    calls = [("look", '{"query": "a"}'), ("look", '{"query": "b"}')]
    model = ScriptedModel([Reply(chunks=openai_chunks(calls, trailing=["x"])), Reply("done")])
    events, _ = await run_events(model, log.tools)
    first_step_end = position(events, StepFinished, step=1)
    assert all(position(events, ToolFinished, index=i) < first_step_end for i in (0, 1))
