"""What a hostile or broken server sends: secrets at a cut, deep JSON, lone surrogates,
shared ids, oversized lines, pages that are not streams. Each case ends in a result or
an agentstream error, never in a foreign exception, a leaked key or a retry storm.

The servers here are real `openai` clients over `httpx2.MockTransport`: the bytes are
exactly the hostile ones, sent through the SDK as any server's would be.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentstream import (
    Agent,
    ModelError,
    Retries,
    StreamAssembler,
    StreamError,
    TextDelta,
    ToolCallInvalid,
    ToolCallReady,
    tool,
)
from agentstream._json import MAX_DEPTH
from agentstream._redact import clip
from agentstream.wire._sse import SSEDecoder, decode_chunk
from agentstream.wire.chat._stream import event_limit

from ._hostile import (
    FINISH_TOOLS,
    KEY,
    RawServer,
    assert_no_piece_of_key,
    call_chunk,
    run_all,
    shown,
    sse,
    text_chunk,
)

# 1. Secrets are masked before anything is cut.


def around_the_cut(offset: int) -> str:
    """Text whose key starts `offset` characters in, across the 200th character."""
    return "x" * offset + KEY + " and more text after it " * 10


@pytest.mark.anyio
@pytest.mark.parametrize("offset", [170, 190, 199, 200])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda text: sse(f"event: error\ndata: {text}\n\n", done=False), id="error"),
        pytest.param(lambda text: sse(f"not json {text}"), id="non-json-line"),
        pytest.param(lambda text: sse({"choices": text}), id="malformed-chunk"),
        pytest.param(
            lambda text: sse(
                'event: error\ndata: {"error": {"message": ' + json.dumps(text) + "}}\n\n"
            ),
            id="error-object",
        ),
    ],
)
async def test_a_key_across_the_cut_never_shows(offset: int, body: Any) -> None:
    server = RawServer([body(around_the_cut(offset))])
    events, error = await run_all(server)
    assert isinstance(error, StreamError)
    assert "***" in shown(events, error)
    assert_no_piece_of_key(shown(events, error))


safe_text = st.text(alphabet="xyz {}:,\"'\\\n", max_size=400)


@settings(max_examples=150, deadline=None)
@given(before=safe_text, after=safe_text, reads=st.integers(1, 97), named=st.booleans())
def test_property_a_key_anywhere_in_a_line_never_shows(
    before: str, after: str, reads: int, named: bool
) -> None:
    """Wherever the key sits in a line, and however the bytes are read, no piece shows."""
    line = (before + KEY + after).replace("\n", " ")
    body = (f"event: error\ndata: {line}\n\n" if named else f"data: {line}\n\n").encode()
    decoder = SSEDecoder(secret=KEY)
    events = []
    for start in range(0, len(body), reads):
        events += decoder.feed(body[start : start + reads])
    events += decoder.flush()
    assembler = StreamAssembler()
    texts = [repr(events)]
    for event in events:
        try:
            chunk = decode_chunk(event)
            assert chunk is not None
            texts.append(repr(assembler.feed(chunk)))
        except StreamError as exc:
            texts += [str(exc), repr(exc.body)]
    assert_no_piece_of_key("\n".join(texts))


@given(text=safe_text, at=st.integers(0, 400), limit=st.integers(0, 300))
def test_property_clip_masks_before_it_cuts(text: str, at: int, limit: int) -> None:
    whole = text[:at] + KEY + text[at:]
    assert_no_piece_of_key(clip(whole, limit, KEY))


# 2. JSON nested too deep is a typed error, never a RecursionError.


def deep(depth: int, kind: str = "[") -> str:
    close = {"[": "]", "{": "}"}[kind]
    inner = '"a":' if kind == "{" else ""
    return (kind + inner) * depth + "1" + close * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 700, 5000, 100_000])
@pytest.mark.parametrize("kind", ["[", "{"])
def test_deep_json_in_a_data_line_is_a_stream_error(depth: int, kind: str) -> None:
    with pytest.raises(StreamError, match="nested more than 200 levels deep"):
        decode_chunk(SSEDecoder().feed(f"data: {deep(depth, kind)}\n\n".encode())[0])
    # With a lone surrogate too, which sends it through `json` (that recurses).
    line = '{"t": "\\ud800", "x": ' + deep(depth, kind) + "}"
    with pytest.raises(StreamError, match="nested more than 200 levels deep"):
        decode_chunk(SSEDecoder().feed(f"data: {line}\n\n".encode())[0])


@settings(max_examples=60, deadline=None)
@given(
    opens=st.lists(st.sampled_from(["[", '{"k":', '{"\\ud800":', '["\\udc00",']), max_size=40),
    depth=st.integers(0, 3000),
    closed=st.booleans(),
)
def test_property_any_nesting_is_read_or_refused(
    opens: list[str], depth: int, closed: bool
) -> None:
    prefix = "".join(opens) + "[" * depth
    closing = "".join("]" if o.startswith("[") else "}" for o in reversed(opens))
    text = prefix + "0" + ("]" * depth + closing if closed else "")
    with contextlib.suppress(StreamError):
        decode_chunk(SSEDecoder().feed(f'data: {{"v": {text}}}\n\n'.encode())[0])


@pytest.mark.anyio
async def test_deep_json_error_payload_and_whole_body_are_stream_errors() -> None:
    error_event = f'event: error\ndata: {{"error": {deep(5000, "{")}}}\n\n'
    server = RawServer([sse(error_event, done=False)])
    _, error = await run_all(server)
    assert isinstance(error, StreamError)

    server = RawServer([("application/json", deep(5000, "{").encode())])
    _, error = await run_all(server)
    assert isinstance(error, StreamError)
    assert "nested more than 200 levels deep" in str(error)


@pytest.mark.anyio
async def test_deep_tool_arguments_are_an_invalid_call_not_a_crash() -> None:
    @tool
    def take(value: Any) -> str:
        """Take anything."""
        return "taken"

    arguments = '{"value": ' + deep(5000) + "}"
    pieces = [arguments[i : i + 40] for i in range(0, len(arguments), 40)]
    first, *rest = pieces
    chunks = [call_chunk(0, "c1", "take", first)]
    chunks += [{"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": piece}}]}}]} for piece in rest]  # fmt: skip
    server = RawServer([sse(*chunks, FINISH_TOOLS), sse(text_chunk("ok", "stop"))])
    events, error = await run_all(server, take)
    assert error is None, error
    [invalid] = [event for event in events if isinstance(event, ToolCallInvalid)]
    assert invalid.name == "take"


def test_deep_json_in_a_recording_given_to_replay_is_a_stream_error(tmp_path: Any) -> None:
    from agentstream.cli._replay import replay

    path = tmp_path / "deep.jsonl"
    path.write_text('{"choices": ' + deep(5000) + "}\n")
    with pytest.raises(StreamError, match="nested"):
        replay(path, io.StringIO())


@pytest.mark.anyio
async def test_the_offline_server_refuses_a_deep_request_and_keeps_serving() -> None:
    from agentstream.testing import Reply, ScriptedModel, serve

    model = ScriptedModel([Reply("still here")])
    async with anyio.create_task_group() as group:
        port = await group.start(serve, model)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1") as http:
            body = '{"model": "m", "messages": ' + deep(50_000) + "}"
            refused = await http.post(
                "/chat/completions", content=body, headers={"content-type": "application/json"}
            )
            assert refused.status_code == 400
            answered = await http.post(
                "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answered.status_code == 200
            assert "still here" in answered.text
        group.cancel_scope.cancel()


# 3. Lone surrogates never reach the wire.


@pytest.mark.anyio
async def test_lone_and_split_surrogates_are_sent_on_repaired() -> None:
    @tool
    def listing() -> str:
        """List a directory with a name that is not UTF-8."""
        return "files: " + os.fsdecode(b"caf\xff.txt")

    first = sse(
        '{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "lone \\ud800 "}}]}',
        '{"choices": [{"index": 0, "delta": {"content": "split \\ud83d"}}]}',
        '{"choices": [{"index": 0, "delta": {"content": "\\ude00 end"}}]}',
        call_chunk(0, "c1", "listing", "{}"),
        FINISH_TOOLS,
    )
    server = RawServer([first, sse(text_chunk("fine", "stop"))])
    events, error = await run_all(server, listing)
    assert error is None, error
    assert len(server.requests) == 2
    sent = server.requests[1]["messages"]
    assert sent[1]["content"] == "lone \ufffd split \U0001f600 end"
    assert sent[2]["content"] == "files: caf\ufffd.txt"
    deltas = "".join(e.text for e in events if isinstance(e, TextDelta) and e.step == 1)
    assert deltas == sent[1]["content"]  # every delta can be printed as it came


def test_a_split_pair_is_joined_even_with_a_chunk_between() -> None:
    held: dict[tuple[Any, ...], str] = {}
    lines = [
        '{"choices": [{"index": 0, "delta": {"content": "a\\ud83d"}}]}',
        '{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}',
        '{"choices": [{"index": 0, "delta": {"content": "\\ude00b"}}]}',
        '{"choices": [{"index": 0, "delta": {"content": "c\\udbff"}}]}',
        '{"choices": [{"index": 0, "delta": {"content": "d"}}]}',
    ]
    texts = []
    for line in lines:
        chunk = decode_chunk(SSEDecoder().feed(f"data: {line}\n\n".encode())[0], held)
        assert chunk is not None
        texts.append(chunk["choices"][0]["delta"].get("content", ""))
    assert "".join(texts) == "a\U0001f600bc\ufffdd"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=6) | st.sampled_from(["\ud83d", "\ude00", "\udbff"]), max_size=8))
def test_property_decoded_text_always_encodes(pieces: list[str]) -> None:
    held: dict[tuple[Any, ...], str] = {}
    for piece in pieces:
        line = json.dumps(text_chunk(piece))  # escapes every surrogate
        chunk = decode_chunk(SSEDecoder().feed(f"data: {line}\n\n".encode())[0], held)
        assert chunk is not None
        json.dumps(chunk, ensure_ascii=False).encode("utf-8")


# 4. A new index is a new call, whatever its id; ids are unique when sent back.


@pytest.mark.anyio
async def test_parallel_calls_sharing_an_id_are_two_calls_with_unique_ids() -> None:
    @tool
    def get(a: int) -> str:
        """Get."""
        return f"got {a}"

    first = sse(
        call_chunk(0, "call_same", "get", '{"a":'),
        call_chunk(1, "call_same", "get", '{"a":'),
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_same", "function": {"arguments": "2}"}}]}}]},
        FINISH_TOOLS,
    )  # fmt: skip
    server = RawServer([first, sse(text_chunk("done", "stop"))])
    events, error = await run_all(server, get)
    assert error is None, error
    ready = [event for event in events if isinstance(event, ToolCallReady)]
    assert [event.arguments for event in ready] == [{"a": 1}, {"a": 2}]
    assistant, *results = server.requests[1]["messages"][1:]
    ids = [call["id"] for call in assistant["tool_calls"]]
    assert len(set(ids)) == 2
    assert [r["tool_call_id"] for r in results] == ids
    assert [r["content"] for r in results] == ["got 1", "got 2"]


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["a", "b", "", None]), min_size=1, max_size=6),
    split=st.integers(1, 5),
)
def test_property_each_index_is_its_own_call(ids: list[str | None], split: int) -> None:
    assembler = StreamAssembler()
    for index, call_id in enumerate(ids):
        arguments = json.dumps({"n": index})
        for start in range(0, len(arguments), split):
            fragment: dict[str, Any] = {"index": index, "function": {"arguments": ""}}
            if start == 0:
                fragment["function"]["name"] = "f"
            if call_id is not None:
                fragment["id"] = call_id
            fragment["function"]["arguments"] = arguments[start : start + split]
            assembler.feed({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]})
    calls = assembler.finish().message.tool_calls
    assert [json.loads(call.arguments) for call in calls] == [{"n": i} for i in range(len(ids))]


# 5. Sizes are bounded: one line by the argument limit, one step's tool runs by default.


@pytest.mark.anyio
async def test_a_line_far_past_the_argument_limit_is_refused_as_a_stream_error() -> None:
    huge = call_chunk(0, "c1", "f", json.dumps({"x": "y" * 2_000_000}))
    server = RawServer([sse(huge, FINISH_TOOLS)])
    _, error = await run_all(server, max_argument_size=100_000)
    assert isinstance(error, StreamError)
    assert f"more than {event_limit(100_000)} bytes" in str(error)


@pytest.mark.anyio
async def test_a_response_with_many_calls_runs_64_by_default() -> None:
    ran: list[int] = []

    @tool
    def f(n: int) -> str:
        """Count."""
        ran.append(n)
        return "ok"

    chunks = [call_chunk(i, f"c{i}", "f", json.dumps({"n": i})) for i in range(100)]
    server = RawServer([sse(*chunks, FINISH_TOOLS), sse(text_chunk("done", "stop"))])
    events, error = await run_all(server, f)
    assert error is None, error
    assert Agent(client=lambda: server.client(), model="m").max_tool_calls_per_step == 64
    assert sorted(ran) == list(range(64))
    refused = [event for event in events if isinstance(event, ToolCallInvalid)]
    assert len(refused) == 36
    assert "at most 64 tool calls" in refused[0].error


# 6. A body that is not a stream says what it is, and is not retried.


@pytest.mark.anyio
async def test_an_html_page_is_a_model_error_that_says_so_and_is_not_retried() -> None:
    page = b"<!DOCTYPE html><html><body>Log in with " + KEY.encode() + b" here</body></html>"
    server = RawServer([("text/html; charset=utf-8", page)] * 3)
    events, error = await run_all(server, retries=Retries(max_retries=2, backoff=0))
    assert isinstance(error, ModelError)
    assert "text/html" in str(error)
    assert "<!DOCTYPE html>" in str(error)
    assert len(server.requests) == 1
    assert_no_piece_of_key(shown(events, error))


@pytest.mark.anyio
async def test_a_mislabelled_stream_is_still_read() -> None:
    _, body = sse(text_chunk("hello", "stop"))
    server = RawServer([("text/plain", body)])
    events, error = await run_all(server)
    assert error is None
    assert events[-1].result.output == "hello"
