"""Fuzzing the wire side: garbage in gives a result or an agentstream error, never anything else.

The assembler alone (wrong types at every field, huge and negative numbers, deep nesting,
lone surrogates), the SSE decoder on random bytes, and whole bodies of hostile lines
through the real client and the agent loop.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstream import AgentStreamError, StreamAssembler, StreamError, tool
from agentstream.wire._sse import SSEDecoder, decode_chunk

from ._hostile import RawServer, run_all, sse, text_chunk


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers(-(2**80), 2**80)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "\udfff", "\ud83d"])
    | st.integers(150, 3000).map(nested)
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def maybe(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


def merged(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


functions = (
    merged(
        maybe("name", st.none() | st.text(max_size=5) | anything),
        maybe("arguments", st.none() | st.text(max_size=8) | anything),
    )
    | anything
)
fragments = (
    merged(
        maybe("index", st.none() | st.integers(-1, 3) | anything),
        maybe("id", st.none() | st.sampled_from(["", "a", "b"]) | anything),
        maybe("type", st.just("function") | anything),
        maybe("function", functions),
    )
    | anything
)
deltas = (
    merged(
        maybe("role", st.just("assistant") | anything),
        maybe("content", st.none() | st.text(max_size=6) | anything),
        maybe("refusal", st.none() | st.text(max_size=4) | anything),
        maybe("reasoning", st.none() | st.text(max_size=4) | anything),
        maybe("reasoning_details", anything),
        maybe("tool_calls", st.none() | st.lists(fragments, max_size=3) | anything),
    )
    | anything
)
choices = (
    merged(
        maybe("index", st.integers(0, 2) | anything),
        maybe("delta", deltas),
        maybe(
            "finish_reason",
            st.none() | st.sampled_from(["stop", "tool_calls", "length"]) | anything,
        ),
    )
    | anything
)
chunks = (
    merged(
        maybe("id", anything),
        maybe("choices", st.lists(choices, max_size=3) | anything),
        maybe("usage", st.none() | anything),
        maybe("error", anything),
    )
    | anything
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunks, max_size=8))
def test_garbage_raises_only_stream_error(stream: list[Any]) -> None:
    assembler = StreamAssembler()
    for chunk in stream:
        try:
            events = assembler.feed(chunk)
        except StreamError:
            continue
        assert isinstance(events, list)
    response = assembler.finish()
    for call in response.message.tool_calls:
        assert isinstance(call.arguments, str)
        assert call.id


# 7. Random bytes through the real client: a result or an agentstream error, nothing else.

hostile_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["\ud800", "f", "c1", "{", "tool_calls", "stop"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def hostile_lines() -> st.SearchStrategy[bytes]:
    chunk = st.fixed_dictionaries(
        {},
        optional={
            "choices": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "index": hostile_values,
                        "delta": st.fixed_dictionaries(
                            {},
                            optional={
                                "content": hostile_values,
                                "tool_calls": st.lists(
                                    st.fixed_dictionaries(
                                        {},
                                        optional={
                                            "index": hostile_values,
                                            "id": hostile_values,
                                            "function": st.fixed_dictionaries(
                                                {},
                                                optional={
                                                    "name": hostile_values,
                                                    "arguments": hostile_values,
                                                },
                                            )
                                            | hostile_values,
                                        },
                                    )
                                    | hostile_values,
                                    max_size=3,
                                )
                                | hostile_values,
                            },
                        )
                        | hostile_values,
                        "finish_reason": hostile_values,
                    },
                )
                | hostile_values,
                max_size=2,
            )
            | hostile_values,
            "usage": hostile_values,
            "error": hostile_values,
        },
    )
    as_line = chunk.map(lambda c: b"data: " + json.dumps(c).encode() + b"\n\n")
    return (
        as_line
        | st.binary(max_size=40)
        | st.sampled_from([b"event: error\n", b"data: [DONE]\n\n", b": c\n\n", b"\r", b"\n"])
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_lines(), max_size=8), st.sampled_from(["text/event-stream", "text/html"]))
def test_property_hostile_bodies_give_a_result_or_an_agentstream_error(
    lines: list[bytes], content_type: str
) -> None:
    @tool
    def f(x: int = 0) -> str:
        """F."""
        return "ok"

    server = RawServer([(content_type, b"".join(lines))] + [sse(text_chunk("end", "stop"))] * 3)

    async def main() -> None:
        _, error = await run_all(server, f, max_steps=2)
        assert error is None or isinstance(error, AgentStreamError), repr(error)

    anyio.run(main)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=30) | hostile_lines(), max_size=10), st.integers(1, 50))
def test_random_bytes_decode_to_chunks_or_stream_errors(pieces: list[bytes], read: int) -> None:
    body = b"".join(pieces)
    decoder = SSEDecoder(secret="sk-0123456789", max_event_size=400)
    held: dict[tuple[Any, ...], str] = {}
    try:
        events = [e for i in range(0, len(body), read) for e in decoder.feed(body[i : i + read])]
        events += decoder.flush()
    except StreamError:
        return
    assembler = StreamAssembler()
    for event in events:
        try:
            chunk = decode_chunk(event, held)
            if chunk is not None:
                assembler.feed(chunk)
        except StreamError:
            continue
        if chunk is not None:
            json.dumps(chunk, ensure_ascii=False).encode("utf-8")  # always sendable text
    assembler.finish()
