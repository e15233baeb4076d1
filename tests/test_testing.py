"""agentstream.testing, used as users use it: the real openai client against a scripted model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

import agentstream.testing
from agentstream.testing import (
    Fault,
    ModelRequest,
    Reply,
    ScriptedModel,
    ToolCall,
    serve,
)

# openai's AsyncStream stops at [DONE] without closing its SSE generators, nor the httpx2
# and httpcore2 ones under them, and trio warns when it finalizes them (httpx2.MockTransport
# shows it too). The leak is the SDK's, so exactly that warning is let through here.
from ._streams import INDEX, load_chunks, stream_path

pytestmark = pytest.mark.filterwarnings(
    r"ignore:Async generator '(openai|httpx2|httpcore2)\.:ResourceWarning"
)

RECORDINGS = sorted(stream_path(name) for name in INDEX)

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}
CHAT_BODY: dict[str, Any] = {"model": "m", "messages": USER, "stream": True}


async def stream_chunks(
    client: openai.AsyncOpenAI, *, include_usage: bool = False
) -> list[dict[str, Any]]:
    """Stream one completion through the SDK and return its chunks as plain dicts."""
    stream = await client.chat.completions.create(
        model="m",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True} if include_usage else openai.omit,
    )
    async with stream:
        return [chunk.to_dict() async for chunk in stream]


async def drain(stream: AsyncIterable[Any], into: list[Any]) -> None:
    """Read `stream` to its end (or its error), keeping what arrives."""
    async for item in stream:
        into.append(item)


async def wire_events(model: ScriptedModel, body: dict[str, Any] = CHAT_BODY) -> list[str]:
    """The raw SSE events of one answer, read with a bare httpx2 client."""
    async with httpx2.AsyncClient(transport=model.async_transport()) as http:
        response = await http.post("http://model.test/v1/chat/completions", json=body)
    text: str = response.content.decode()
    assert text.endswith("\n\n")
    return text[:-2].split("\n\n")


def deltas(chunks: list[dict[str, Any]]) -> list[Any]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def shape(value: Any) -> Any:
    """The structure of a chunk: keys and value types, usage contents ignored."""
    if isinstance(value, dict):
        return {k: "usage" if k == "usage" and v else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def shapes(chunks: list[dict[str, Any]]) -> set[str]:
    return {json.dumps(shape(c), sort_keys=True) for c in chunks}


@asynccontextmanager
async def serving(model: ScriptedModel) -> AsyncIterator[tuple[int, anyio.CancelScope]]:
    """Run `serve(model)` in the background; yield its port and a scope that stops it."""
    scope = anyio.CancelScope()

    async def run(*, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await serve(model, task_status=task_status)

    async with anyio.create_task_group() as tg:
        port = await tg.start(run)
        try:
            yield port, scope
        finally:
            scope.cancel()


def loopback_client(port: int, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, **options
    )


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(agentstream.testing) if not name.startswith("_")}
    assert sorted(agentstream.testing.__all__) == agentstream.testing.__all__
    assert set(agentstream.testing.__all__) == public - {"annotations"}


# --- streaming through the real SDK ------------------------------------------------------


@pytest.mark.anyio
async def test_text_streams_word_by_word_in_openai_shape() -> None:
    model = ScriptedModel([Reply("It is  sunny\nin Paris. ")])
    async with model.async_client() as client:
        chunks = await stream_chunks(client)

    first, *middle, last = chunks
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert [d["content"] for d in deltas(middle)] == [
        "It",
        " is",
        "  sunny",
        "\nin",
        " Paris.",
        " ",
    ]
    assert last["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert all(c["choices"] for c in chunks), "no usage chunk without include_usage"
    assert {(c["id"], c["object"], c["model"]) for c in chunks} == {
        ("chatcmpl-scripted1", "chat.completion.chunk", "m")
    }


@pytest.mark.anyio
async def test_parallel_tool_calls_stream_header_then_argument_pieces() -> None:
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("get_weather", {"city": "Paris"}),
                    ToolCall("get_weather", {"city": "Tokyo"}),
                ],
                piece_size=6,
            )
        ]
    )
    async with model.async_client() as client:
        chunks = await stream_chunks(client, include_usage=True)

    def header(index: int, call_id: str) -> dict[str, Any]:
        function = {"name": "get_weather", "arguments": ""}
        return {
            "tool_calls": [
                {"index": index, "id": call_id, "type": "function", "function": function}
            ]
        }

    def piece(index: int, arguments: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}

    assert deltas(chunks) == [
        {"role": "assistant", "content": None, "refusal": None},
        header(0, "call_1"),
        piece(0, '{"city'),
        piece(0, '": "Pa'),
        piece(0, 'ris"}'),
        header(1, "call_2"),
        piece(1, '{"city'),
        piece(1, '": "To'),
        piece(1, 'kyo"}'),
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage: Any = usage_chunk["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


@pytest.mark.anyio
async def test_tool_call_ids_are_unique_per_model_and_explicit_ids_are_kept() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("a"), ToolCall("b", id="call_mine")]),
            Reply(tool_calls=[ToolCall("c")]),
        ]
    )
    ids = []
    async with model.async_client() as client:
        for _ in range(2):
            for delta in deltas(await stream_chunks(client)):
                ids += [call["id"] for call in delta.get("tool_calls", []) if "id" in call]
    assert ids == ["call_1", "call_mine", "call_2"]


@pytest.mark.anyio
async def test_str_arguments_are_sent_verbatim_with_an_overridden_finish_reason() -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("get_weather", '{"city": "Par')], finish_reason="length")]
    )
    async with model.async_client() as client:
        chunks = await stream_chunks(client)
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas(chunks)[1:-1]]
    assert "".join(fragments) == '{"city": "Par'
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.anyio
async def test_reasoning_streams_before_the_text() -> None:
    model = ScriptedModel([Reply("Sunny.", reasoning="Look it up.")])
    async with model.async_client() as client:
        chunks = await stream_chunks(client)
    assert deltas(chunks)[1:-1] == [
        {"reasoning_content": "Look"},
        {"reasoning_content": " it"},
        {"reasoning_content": " up."},
        {"content": "Sunny."},
    ]


@pytest.mark.anyio
async def test_explicit_usage_is_sent_verbatim() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    model = ScriptedModel([Reply("hi", usage=usage)])
    async with model.async_client() as client:
        chunks = await stream_chunks(client, include_usage=True)
    assert chunks[-1]["usage"] == usage


def _final_calls(name: str) -> list[ToolCall]:
    calls = INDEX[name]["final"][0]["message"].get("tool_calls", [])
    return [ToolCall(c["function"]["name"], c["function"]["arguments"]) for c in calls]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("recording", "dialect", "include_usage"),
    [
        pytest.param("openai-python__plain-text", "openai", True, id="openai-text"),
        pytest.param("openai-python__refusal", "openai", True, id="openai-refusal"),
        pytest.param("magentic__mistral-large-text", "mistral", False, id="mistral-text"),
        pytest.param("magentic__mistral-large-single-tool", "mistral", False, id="mistral-tool"),
        pytest.param("magentic__ollama-llama31-text", "ollama", False, id="ollama-text"),
        pytest.param("magentic__ollama-llama31-forced-tool", "ollama", False, id="ollama-tool"),
    ],
)
async def test_each_dialect_streams_the_chunk_shapes_its_server_sends(
    recording: str, dialect: Any, include_usage: bool
) -> None:
    message = INDEX[recording]["final"][0]["message"]
    text = message["content"] if message.get("tool_calls") is None else None
    reply = Reply(
        text, tool_calls=_final_calls(recording), refusal=message.get("refusal"), dialect=dialect
    )
    model = ScriptedModel([reply])
    async with model.async_client() as client:
        chunks = await stream_chunks(client, include_usage=include_usage)
    assert shapes(chunks) == shapes(load_chunks(recording))
    content = "".join(d.get("content") or "" for d in deltas(chunks))
    assert content == (text or "")
    # These servers send each call whole, in one fragment.
    whole = [c["function"] for d in deltas(chunks) for c in d.get("tool_calls", [])]
    assert [(f["name"], f["arguments"]) for f in whole] == [
        (c.name, c.arguments) for c in reply.tool_calls
    ]


@pytest.mark.anyio
async def test_mistral_sends_whole_calls_without_index_in_the_finish_chunk() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("plus", {"a": 1})], dialect="mistral")])
    async with model.async_client() as client:
        chunks = await stream_chunks(client, include_usage=True)
    last = chunks[-1]
    assert last["choices"] == [
        {
            "index": 0,
            "delta": {
                "tool_calls": [
                    {"id": "call_1", "function": {"name": "plus", "arguments": '{"a": 1}'}}
                ]
            },
            "finish_reason": "tool_calls",
        }
    ]
    assert set(last["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


@pytest.mark.anyio
async def test_ollama_repeats_the_role_and_finishes_with_stop() -> None:
    reply = Reply("Hi!", tool_calls=[ToolCall("f", {})], dialect="ollama")
    model = ScriptedModel([reply])
    async with model.async_client() as client:
        chunks = await stream_chunks(client, include_usage=True)
    assert all(d["role"] == "assistant" for d in deltas(chunks))
    assert deltas(chunks)[1]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in c for c in chunks)


@pytest.mark.anyio
@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
async def test_raw_chunks_replay_a_recorded_stream_through_the_sdk(path: Path) -> None:
    expected = load_chunks(path.stem)
    model = ScriptedModel([Reply(chunks=path.read_text().splitlines())])
    received: list[Any] = []
    async with model.async_client() as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            broken = next((i for i, c in enumerate(expected) if c.get("error")), None)
            if broken is None:
                await drain(stream, received)
            else:  # the SDK raises on a payload that carries an error, as it should
                with pytest.raises(openai.APIError):
                    await drain(stream, received)
                expected = expected[:broken]
    assert [chunk.to_dict() for chunk in received] == expected


# --- non-streaming, sync, policy, recording ----------------------------------------------


@pytest.mark.anyio
async def test_a_non_streaming_request_gets_a_whole_completion() -> None:
    model = ScriptedModel(
        [Reply("Checking.", tool_calls=[ToolCall("get_weather", {"city": "Paris"})])]
    )
    async with model.async_client() as client:
        completion = await client.chat.completions.create(model="m", messages=USER)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


@pytest.mark.anyio
async def test_raw_chunks_cannot_be_answered_without_streaming() -> None:
    model = ScriptedModel([Reply(chunks=[])])
    async with model.async_client() as client:
        with pytest.raises(openai.BadRequestError, match="stream=true"):
            await client.chat.completions.create(model="m", messages=USER)


def test_the_sync_client_streams_too() -> None:
    model = ScriptedModel([Reply("Hello there"), Reply("x y", fault=Fault(drop_after=2))])
    with model.client() as client:
        stream = client.chat.completions.create(model="m", messages=USER, stream=True)
        with stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Hello there"
        stream = client.chat.completions.create(model="m", messages=USER, stream=True)
        with stream, pytest.raises(openai.APIConnectionError):
            for _ in stream:
                pass


@pytest.mark.anyio
async def test_a_policy_answers_from_the_request() -> None:
    def echo(request: ModelRequest) -> Reply:
        return Reply(f"You said: {request.messages[-1]['content']}")

    model = ScriptedModel(echo)
    async with model.async_client() as client:
        for _ in range(3):
            completion = await client.chat.completions.create(model="m", messages=USER)
            assert completion.choices[0].message.content == "You said: Weather in Paris?"
    assert len(model.requests) == 3


@pytest.mark.anyio
async def test_a_failing_policy_surfaces_through_the_sdk() -> None:
    def broken(request: ModelRequest) -> Reply:
        raise RuntimeError("policy bug")

    model = ScriptedModel(broken)
    async with model.async_client() as client:
        with pytest.raises(RuntimeError, match="policy bug"):
            await client.chat.completions.create(model="m", messages=USER)


@pytest.mark.anyio
async def test_every_request_is_load_chunks() -> None:
    model = ScriptedModel([Reply("a")])
    async with model.async_client() as client:
        await stream_chunks(client, include_usage=True)
        await client.models.list()
    chat, models = model.requests
    assert (chat.method, chat.path, chat.model) == ("POST", "/v1/chat/completions", "m")
    assert chat.messages == USER
    assert chat.stream
    assert chat.include_usage
    assert chat.tools == []
    assert chat.headers["authorization"] == "Bearer scripted-key"
    assert json.loads(chat.content) == chat.body
    assert (models.method, models.path, models.body) == ("GET", "/v1/models", None)


@pytest.mark.anyio
async def test_tools_are_load_chunks() -> None:
    model = ScriptedModel([Reply("a")])
    async with model.async_client() as client:
        await client.chat.completions.create(model="m", messages=USER, tools=[WEATHER_TOOL])
    assert model.requests[0].tools == [WEATHER_TOOL]


@pytest.mark.anyio
async def test_an_exhausted_script_answers_500_and_still_records() -> None:
    model = ScriptedModel([Reply("only one")])
    async with model.async_client() as client:
        await stream_chunks(client)
        with pytest.raises(openai.InternalServerError, match="script exhausted") as caught:
            await stream_chunks(client)
    assert caught.value.status_code == 500
    assert len(model.requests) == 2


@pytest.mark.anyio
async def test_an_unknown_path_answers_404() -> None:
    model = ScriptedModel([])
    async with httpx2.AsyncClient(transport=model.async_transport()) as http:
        response = await http.get("http://model.test/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


# --- faults ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_fault_with_retry_after_raises_rate_limit_error() -> None:
    model = ScriptedModel([Reply("x", fault=Fault(status=429, retry_after=2))])
    async with model.async_client(max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await stream_chunks(client)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.anyio
async def test_the_sdk_retries_a_status_fault_onto_the_next_reply() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=503, retry_after=0.001)), Reply("ok")])
    async with model.async_client(max_retries=1) as client:
        chunks = await stream_chunks(client)
    assert deltas(chunks)[1] == {"content": "ok"}
    assert [r.headers["x-stainless-retry-count"] for r in model.requests] == ["0", "1"]


@pytest.mark.anyio
async def test_drop_after_breaks_the_stream_mid_iteration() -> None:
    model = ScriptedModel([Reply("one two three", fault=Fault(drop_after=2))])
    received: list[ChatCompletionChunk] = []
    async with model.async_client() as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            with pytest.raises(openai.APIConnectionError) as caught:
                await drain(stream, received)
    assert len(received) == 2
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


@pytest.mark.anyio
async def test_malformed_after_sends_a_line_that_is_not_json() -> None:
    model = ScriptedModel([Reply("one two", fault=Fault(malformed_after=1)), Reply("a")])
    received: list[ChatCompletionChunk] = []
    async with model.async_client() as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            with pytest.raises(json.JSONDecodeError):
                await drain(stream, received)
    assert len(received) == 1
    events = await wire_events(ScriptedModel([Reply("one", fault=Fault(malformed_after=1))]))
    assert events[1] == 'data: {"choices": ['
    assert events[-1] == "data: [DONE]"


@pytest.mark.anyio
async def test_error_after_sends_an_error_event_and_no_done() -> None:
    fault = Fault(error_after=2, message="overloaded")
    model = ScriptedModel([Reply("one two three", fault=fault)])
    received: list[ChatCompletionChunk] = []
    async with model.async_client() as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            with pytest.raises(openai.APIError, match="overloaded"):
                await drain(stream, received)
    assert len(received) == 2
    events = await wire_events(ScriptedModel([Reply("one", fault=fault)]))
    assert events[-1] == (
        "event: error\ndata: "
        '{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}'
    )


@pytest.mark.anyio
async def test_no_done_ends_the_body_without_done() -> None:
    model = ScriptedModel([Reply("one two", fault=Fault(no_done=True))] * 2)
    events = await wire_events(model)
    assert len(events) == 4
    assert all(e.startswith("data: {") for e in events)
    async with model.async_client() as client:
        assert len(await stream_chunks(client)) == 4


@pytest.mark.anyio
async def test_stall_after_waits_before_the_next_chunk() -> None:
    model = ScriptedModel([Reply("one two", fault=Fault(stall_after=2, stall_seconds=0.05))])
    times = []
    async with model.async_client() as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            async for _ in stream:
                times.append(anyio.current_time())
    assert times[2] - times[1] >= 0.045


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(Fault(drop_after=0), openai.APIConnectionError, id="drop"),
        pytest.param(Fault(error_after=0), openai.InternalServerError, id="error"),
    ],
)
async def test_stream_faults_also_break_non_streaming_answers(
    fault: Fault, error: type[Exception]
) -> None:
    model = ScriptedModel([Reply("x", fault=fault)])
    async with model.async_client() as client:
        with pytest.raises(error):
            await client.chat.completions.create(model="m", messages=USER)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda: Fault(drop_after=1, error_after=1), "at most one", id="two-endings"),
        pytest.param(lambda: Fault(status=429, drop_after=1), "combined", id="status-and-stream"),
        pytest.param(lambda: Fault(status=200), "error status", id="status-not-an-error"),
        pytest.param(lambda: Fault(retry_after=1), "needs a status", id="retry-without-status"),
        pytest.param(lambda: Fault(stall_after=-1), "stall_after", id="negative-count"),
        pytest.param(lambda: Reply("x", piece_size=0), "piece_size", id="piece-size"),
        pytest.param(lambda: Reply("x", dialect=cast(Any, "x")), "dialect", id="dialect"),
        pytest.param(lambda: ToolCall("f", id=""), "id", id="empty-id"),
        pytest.param(lambda: ScriptedModel([], tokens_per_second=0), "tokens_per", id="tps"),
    ],
)
def test_bad_settings_are_refused_at_once(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# --- pacing ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_ttft_and_tokens_per_second_pace_the_stream() -> None:
    model = ScriptedModel([Reply("a b c")], ttft=0.03, tokens_per_second=200)
    async with model.async_client() as client:
        start = anyio.current_time()
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            arrivals = [anyio.current_time() - start async for _ in stream]
    # 5 chunks and [DONE]: ttft before the first, then 5 intervals of 5 ms.
    assert arrivals[0] >= 0.03 * 0.9
    assert arrivals[-1] >= (0.03 + 4 * 0.005) * 0.9


# --- property ----------------------------------------------------------------------------


def _assemble(events: list[str]) -> tuple[str, list[tuple[str, str]], str | None]:
    text, finish = "", None
    calls: dict[Any, tuple[str, str]] = {}
    for event in events:
        payload = event.removeprefix("data: ")
        if payload == "[DONE]":
            break
        for choice in json.loads(payload)["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for n, call in enumerate(delta.get("tool_calls", [])):
                key = call.get("index", call.get("id", n))
                name, arguments = calls.get(key, ("", ""))
                function = call["function"]
                calls[key] = (name + function.get("name", ""), arguments + function["arguments"])
            finish = choice["finish_reason"] or finish
    return text, list(calls.values()), finish


@given(
    text=st.none() | st.text(),
    calls=st.lists(st.tuples(st.text(min_size=1), st.text()), max_size=3),
    piece_size=st.integers(1, 10),
    dialect=st.sampled_from(["openai", "mistral", "ollama"]),
)
def test_streams_reassemble_to_the_reply(
    text: str | None, calls: list[tuple[str, str]], piece_size: int, dialect: Any
) -> None:
    tool_calls = [ToolCall(name, arguments) for name, arguments in calls]
    reply = Reply(text, tool_calls=tool_calls, piece_size=piece_size, dialect=dialect)
    model = ScriptedModel([reply])
    with httpx2.Client(transport=model.transport()) as http:
        response = http.post("http://model.test/v1/chat/completions", json=CHAT_BODY)
    events = response.content.decode().split("\n\n")[:-1]
    assembled_text, assembled_calls, finish = _assemble(events)
    assert assembled_text == (text or "")
    assert assembled_calls == calls
    assert finish == ("tool_calls" if calls and dialect != "ollama" else "stop")
    assert events[-1] == "data: [DONE]"


# --- loopback server ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_serve_streams_to_the_real_client_over_loopback() -> None:
    model = ScriptedModel([Reply("Hello over TCP", tool_calls=[ToolCall("f", {"x": 1})])])
    async with serving(model) as (port, _), loopback_client(port) as client:
        chunks = await stream_chunks(client, include_usage=True)
        page = await client.models.list()
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == "Hello over TCP"
    assert chunks[-1]["choices"] == []
    assert [m.id for m in page.data] == ["scripted-model"]
    assert [r.path for r in model.requests] == ["/v1/chat/completions", "/v1/models"]


@pytest.mark.anyio
async def test_serve_answers_non_streaming_and_error_requests() -> None:
    def policy(request: ModelRequest) -> Reply:
        if request.stream:
            raise RuntimeError("boom")
        return Reply("whole")

    model = ScriptedModel(policy)
    async with serving(model) as (port, _), loopback_client(port) as client:
        completion = await client.chat.completions.create(model="m", messages=USER)
        assert completion.choices[0].message.content == "whole"
        with pytest.raises(openai.InternalServerError, match="RuntimeError: boom"):
            await stream_chunks(client)


@pytest.mark.anyio
async def test_serve_drop_after_cuts_the_chunked_body() -> None:
    model = ScriptedModel([Reply("one two three", fault=Fault(drop_after=2)), Reply("after")])
    received: list[ChatCompletionChunk] = []
    async with serving(model) as (port, _), loopback_client(port) as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async with stream:
            with pytest.raises(openai.APIConnectionError):
                await drain(stream, received)
        assert len(received) == 2
        assert deltas(await stream_chunks(client))[1] == {"content": "after"}


@pytest.mark.anyio
async def test_serve_keeps_the_connection_alive_between_requests() -> None:
    model = ScriptedModel([])
    request = b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
    async with serving(model) as (port, _), await anyio.connect_tcp("127.0.0.1", port) as tcp:
        await tcp.send(request + request)
        received = b""
        with anyio.fail_after(5):
            while received.count(b"scripted-model") < 2:
                received += await tcp.receive()
        await tcp.send(b"NONSENSE\r\n\r\n")
        with anyio.fail_after(5):
            while b"400 Bad Request" not in received:
                received += await tcp.receive()
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert b"connection: keep-alive" in received
    assert len(model.requests) == 2


@pytest.mark.anyio
async def test_cancelling_serve_closes_open_streams_promptly() -> None:
    model = ScriptedModel([Reply("one two", fault=Fault(stall_after=1, stall_seconds=60))])
    with anyio.fail_after(5):
        async with serving(model) as (port, stop), loopback_client(port) as client:
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
            async with stream:
                await stream.__anext__()
                stop.cancel()
                with pytest.raises(openai.APIConnectionError):
                    await stream.__anext__()
