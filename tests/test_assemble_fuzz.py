"""Fuzzing the assembler: garbage in gives `StreamError` or a result, never anything else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstream import StreamAssembler, StreamError

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=6)
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
