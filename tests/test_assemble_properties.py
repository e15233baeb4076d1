"""Property: how a stream is cut into pieces and chunks never changes what it assembles to."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentstream import StreamAssembler, TextDelta, ToolCallDelta, ToolCallStarted
from agentstream.wire._partial_call import _SMALL_ARGUMENTS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
calls_strategy = st.lists(
    st.tuples(
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    ),
    max_size=4,
)


def cut(text: str, data: st.DataObject) -> list[str]:
    """Cut `text` at arbitrary points (at least one piece, possibly empty ones)."""
    points = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def build_stream(
    text: str, calls: list[tuple[str, dict[str, Any]]], data: st.DataObject
) -> list[dict[str, Any]]:
    items: list[tuple[str, Any]] = [("text", piece) for piece in cut(text, data) if piece]
    for index, (name, arguments) in enumerate(calls):
        pieces = cut(json.dumps(arguments), data)
        header: dict[str, Any] = {
            "index": index,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": pieces[0]},
        }
        items.append(("tool", header))
        items.extend(("tool", {"index": index, "function": {"arguments": p}}) for p in pieces[1:])
    chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    position = 0
    while position < len(items):
        size = data.draw(st.integers(1, 4))
        group, position = items[position : position + size], position + size
        delta: dict[str, Any] = {}
        for kind, value in group:
            if kind == "text" and "tool_calls" not in delta:
                delta["content"] = delta.get("content", "") + value
            elif kind == "text":  # keep the order: text after a fragment starts a new chunk
                chunks.append({"choices": [{"index": 0, "delta": delta}]})
                delta = {"content": value}
            else:
                delta.setdefault("tool_calls", []).append(value)
        chunks.append({"choices": [{"index": 0, "delta": delta}]})
    reason = "tool_calls" if calls else "stop"
    if data.draw(st.booleans()):
        chunks[-1]["choices"][0]["finish_reason"] = reason
    else:
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    if data.draw(st.booleans()):
        chunks.append({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    return chunks


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40), calls=calls_strategy, data=st.data())
def test_any_cutting_assembles_to_the_same_message(
    text: str, calls: list[tuple[str, dict[str, Any]]], data: st.DataObject
) -> None:
    assembler = StreamAssembler()
    events = [e for c in build_stream(text, calls, data) for e in assembler.feed(c)]
    message = assembler.finish().message

    assert (message.content or "") == text
    assert [(c.id, c.name, json.loads(c.arguments)) for c in message.tool_calls] == [
        (f"call_{i}", name, arguments) for i, (name, arguments) in enumerate(calls)
    ]
    # The events tell the same story, in the same order.
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
    started = [(e.index, e.name) for e in events if isinstance(e, ToolCallStarted)]
    assert started == [(i, name) for i, (name, _) in enumerate(calls)]
    for i, (_, arguments) in enumerate(calls):
        deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == i]
        assert "".join(e.delta for e in deltas) == json.dumps(arguments)
        # Small arguments are re-parsed on every piece; long ones may lag a little.
        if deltas and len(json.dumps(arguments)) < _SMALL_ARGUMENTS:
            assert deltas[-1].partial == arguments


@settings(max_examples=100, deadline=None)
@given(calls=calls_strategy.filter(bool), data=st.data())
def test_index_free_dialect_assembles_the_same_calls(
    calls: list[tuple[str, dict[str, Any]]], data: st.DataObject
) -> None:
    """Servers without `index` (whole calls, ids only) give the same calls."""
    group = data.draw(st.booleans())
    fragments = [
        {"id": f"call_{i}", "function": {"name": name, "arguments": json.dumps(arguments)}}
        for i, (name, arguments) in enumerate(calls)
    ]
    deltas = [fragments] if group else [[f] for f in fragments]
    assembler = StreamAssembler()
    for tool_calls in deltas:
        assembler.feed({"choices": [{"index": 0, "delta": {"tool_calls": tool_calls}}]})
    assembler.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    message = assembler.finish().message
    assert [(c.id, c.name, json.loads(c.arguments)) for c in message.tool_calls] == [
        (f"call_{i}", name, arguments) for i, (name, arguments) in enumerate(calls)
    ]
