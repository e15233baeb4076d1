"""The assembler: every recorded stream, each merging rule, and its invariants."""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytest
from openai.types.chat import ChatCompletionChunk

from agentstream import (
    AssembledResponse,
    ReasoningDelta,
    RefusalDelta,
    ServerError,
    StreamAssembler,
    StreamError,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
)
from agentstream._events import event_to_dict
from agentstream._stream_events import TextDeltaTwin, ToolCallDeltaTwin
from agentstream.cli._replay import response_to_dict
from agentstream.wire._partial_call import PartialCall as _Call

from ._streams import INDEX, assert_matches_final, load_chunks, stream_params


def assemble(chunks: Sequence[Any], **options: Any) -> tuple[AssembledResponse, list[Any]]:
    assembler = StreamAssembler(**options)
    events = [event for chunk in chunks for event in assembler.feed(chunk)]
    return assembler.finish(), events


@pytest.mark.parametrize("name", stream_params())
def test_recorded_stream_assembles_to_its_final_message(name: str) -> None:
    response, events = assemble(load_chunks(name))
    assert_matches_final(response_to_dict(response)["choices"], INDEX[name]["final"])
    # The text events add up to the text, per choice.
    for choice in response.choices:
        text = "".join(
            e.text for e in events if isinstance(e, TextDelta) and e.choice == choice.index
        )
        assert text == (choice.message.content or "")


@pytest.mark.parametrize("name", stream_params())
def test_recorded_stream_through_sdk_chunk_objects(name: str) -> None:
    """The typed SDK chunks give the same message as the plain dicts."""
    chunks = load_chunks(name)
    typed = [ChatCompletionChunk.construct(**chunk) for chunk in chunks]
    plain, plain_events = assemble(chunks, new_id=lambda: "generated")
    sdk, sdk_events = assemble(typed, new_id=lambda: "generated")
    assert response_to_dict(sdk) == response_to_dict(plain)
    assert sdk_events == plain_events


def padded(chunks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same chunks with `"refusal": null` in every delta: none takes the short path."""
    out = []
    for original in chunks:
        data = json.loads(json.dumps(original))
        for choice in data.get("choices") or ():
            if isinstance(choice, dict) and isinstance(choice.get("delta"), dict):
                choice["delta"].setdefault("refusal", None)
        out.append(data)
    return out


@pytest.mark.parametrize("name", stream_params())
def test_the_short_path_for_lone_pieces_changes_nothing(name: str) -> None:
    """Chunks with one piece of text or arguments skip most checks; the result is the same."""
    chunks = load_chunks(name)
    short, short_events = assemble(chunks, new_id=lambda: "generated")
    full, full_events = assemble(padded(chunks), new_id=lambda: "generated")
    assert response_to_dict(short) == response_to_dict(full)
    assert short_events == full_events
    assert [repr(e) for e in short_events] == [repr(e) for e in full_events]
    assert [type(e) for e in short_events] == [type(e) for e in full_events]


def test_events_made_the_cheap_way_are_ordinary_frozen_events() -> None:
    made = ToolCallDeltaTwin(1, 0, 2, "call_1", "f", "ab", {"a": 1})
    made.__class__ = ToolCallDelta
    plain = ToolCallDelta(1, 0, 2, "call_1", "f", "ab", {"a": 1})
    assert type(made) is ToolCallDelta
    assert (made, repr(made), event_to_dict(made)) == (plain, repr(plain), event_to_dict(plain))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.delta = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(made)) == plain
    assert dataclasses.replace(made, delta="c") == ToolCallDelta(
        1, 0, 2, "call_1", "f", "c", {"a": 1}
    )
    text = TextDeltaTwin(3, 1, "hi")
    text.__class__ = TextDelta
    assert type(text) is TextDelta
    assert (text, hash(text)) == (TextDelta(3, 1, "hi"), hash(TextDelta(3, 1, "hi")))
    match text:
        case TextDelta(text=said, type="text_delta"):
            assert said == "hi"
        case _:
            pytest.fail("not matched")


def chunk(*fragments: dict[str, Any], finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if fragments:
        delta["tool_calls"] = list(fragments)
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def frag(
    index: int | None = None, id: str | None = None, name: str | None = None, args: Any = None
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if index is not None:
        data["index"] = index
    if id is not None:
        data["id"] = id
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    if function:
        data["function"] = function
    return data


def calls(response: AssembledResponse) -> list[tuple[str | None, str | None, Any]]:
    return [
        (c.id, c.name, json.loads(c.arguments) if c.arguments.startswith("{") else c.arguments)
        for c in response.message.tool_calls
    ]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param(
            [chunk(frag(1, "a", "f", "")), chunk(frag(1, args='{"x":')), chunk(frag(1, args="1}"))],
            [("a", "f", {"x": 1})],
            id="index-starts-at-1",
        ),
        pytest.param(
            [chunk(frag(None, "a", "f", '{"x":1}'), frag(None, "b", "g", '{"y":2}'))],
            [("a", "f", {"x": 1}), ("b", "g", {"y": 2})],
            id="no-index-two-ids-in-one-delta",
        ),
        pytest.param(
            [
                chunk(frag(None, None, "f", '{"x":'), frag(None, None, "g", '{"y":')),
                chunk(frag(None, None, None, "1}"), frag(None, None, None, "2}")),
            ],
            [("generated", "f", {"x": 1}), ("generated", "g", {"y": 2})],
            id="no-index-no-id-by-position",
        ),
        pytest.param(
            [
                chunk(frag(None, "a", "f", "")),
                chunk(frag(None, None, None, '{"x"')),
                chunk(frag(None, None, None, ":1}")),
            ],
            [("a", "f", {"x": 1})],
            id="anonymous-fragments-continue-last-call",
        ),
        pytest.param(
            [chunk(frag(None, None, "f", '{"x":1}')), chunk(frag(None, None, "f", '{"x":2}'))],
            [("generated", "f", {"x": 1}), ("generated", "f", {"x": 2})],
            id="anonymous-whole-calls-same-name",
        ),
        pytest.param(
            [chunk(frag(0, "a", "f", "")), chunk(frag(0, "a", "f", '{"x":1}'))],
            [("a", "f", {"x": 1})],
            id="id-and-name-repeated-not-concatenated",
        ),
        pytest.param(
            [chunk(frag(0, "a", "f", "")), chunk(frag(0, "", "", '{"x":1}'))],
            [("a", "f", {"x": 1})],
            id="empty-id-and-name-on-later-fragments",
        ),
        pytest.param(
            [chunk(frag(0, "a", "f", '{"x":1}')), chunk(frag(0, "b", "g", '{"y":2}'))],
            [("a", "f", {"x": 1}), ("b", "g", {"y": 2})],
            id="index-0-reused-for-each-call",
        ),
        pytest.param(
            [chunk(frag(0, None, "f", "")), chunk(frag(0, None, None, ""))],
            [("generated", "f", {})],
            id="no-parameters-empty-arguments",
        ),
        pytest.param(
            [chunk(frag(0, "a", "f", {"x": 1}))],
            [("a", "f", {"x": 1})],
            id="arguments-sent-as-object",
        ),
        pytest.param(
            [chunk(frag(0, "a", None, '{"x":')), chunk(frag(0, None, "f", "1}"))],
            [("a", "f", {"x": 1})],
            id="name-after-arguments",
        ),
    ],
)
def test_tool_call_identity_rules(chunks: list[dict[str, Any]], expected: list[Any]) -> None:
    response, _ = assemble(chunks, new_id=lambda: "generated")
    assert calls(response) == expected


def test_name_arriving_late_starts_the_call_then_flushes_arguments() -> None:
    _, events = assemble([chunk(frag(0, "a", None, '{"x":')), chunk(frag(0, None, "f", "1}"))])
    assert [type(e) for e in events] == [ToolCallStarted, ToolCallDelta]
    assert events[1].delta == '{"x":1}'
    assert events[1].partial == {"x": 1}


def test_finish_reason_rules() -> None:
    assembler = StreamAssembler()
    assembler.feed(chunk(content="hi"))
    assembler.feed(chunk(finish="stop"))
    assembler.feed(chunk(finish=None))
    assembler.feed({"choices": [{"index": 0, "delta": {}}]})
    assert assembler.finish().finish_reason == "stop"


def test_tool_calls_applied_before_finish_reason_in_one_chunk() -> None:
    response, events = assemble([chunk(frag(None, "a", "f", "{}"), finish="tool_calls")])
    assert response.finish_reason == "tool_calls"
    assert [type(e) for e in events] == [ToolCallStarted, ToolCallDelta]


def test_usage_in_any_place_last_one_wins() -> None:
    usage1 = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    usage2 = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    response, _ = assemble(
        [
            {"choices": [{"index": 0, "delta": {"content": "a"}}], "usage": usage1},
            {"choices": [], "usage": usage2},
            {"choices": []},
            {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]},
        ]
    )
    assert response.usage == usage2
    assert response.usage_summary is not None
    assert response.usage_summary.completion_tokens == 5
    assert response.message.content == "ab"


@pytest.mark.parametrize(
    ("delta", "expected_type", "field"),
    [
        pytest.param(
            {"content": [{"type": "text", "text": "hi"}]}, TextDelta, "content", id="parts"
        ),
        pytest.param({"refusal": "no"}, RefusalDelta, "refusal", id="refusal"),
        pytest.param(
            {"reasoning_content": "hm"}, ReasoningDelta, "reasoning", id="reasoning_content"
        ),
        pytest.param({"reasoning": "hm"}, ReasoningDelta, "reasoning", id="reasoning"),
        pytest.param(
            {"reasoning_details": [{"type": "reasoning.text", "text": "hm"}]},
            ReasoningDelta,
            "reasoning",
            id="reasoning_details",
        ),
    ],
)
def test_content_kinds(delta: dict[str, Any], expected_type: type, field: str) -> None:
    response, events = assemble([chunk(**delta)])
    assert [type(e) for e in events] == [expected_type]
    assert getattr(response.message, field) in ("hi", "no", "hm")


def test_reasoning_details_not_doubled_when_reasoning_also_sent() -> None:
    response, _ = assemble(
        [chunk(reasoning="We", reasoning_details=[{"type": "reasoning.text", "text": "We"}])]
    )
    assert response.message.reasoning == "We"


def test_content_null_versus_empty() -> None:
    assert assemble([chunk(content=None)])[0].message.content is None
    assert assemble([chunk(content="")])[0].message.content == ""
    assert assemble([chunk(role="assistant")])[0].message.content is None


def test_multiple_choices_interleaved() -> None:
    response, events = assemble(
        [
            {"choices": [{"index": 1, "delta": {"content": "b"}}]},
            {"choices": [{"index": 0, "delta": {"content": "a"}}]},
            {"choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
    )
    assert [(c.index, c.message.content, c.finish_reason) for c in response.choices] == [
        (0, "a", "stop"),
        (1, "b", "length"),
    ]
    assert [(e.choice, e.text) for e in events if isinstance(e, TextDelta)] == [(1, "b"), (0, "a")]


def test_error_payload_is_recorded_and_reported() -> None:
    assembler = StreamAssembler(step=3)
    events = assembler.feed({"error": {"message": "overloaded", "code": 529}})
    assert events == [ServerError(3, "overloaded", {"message": "overloaded", "code": 529})]
    assert assembler.finish().errors == ({"message": "overloaded", "code": 529},)


def test_unknown_fields_are_ignored() -> None:
    response, _ = assemble(
        [
            {
                "obfuscation": "xyz",
                "x_groq": {"id": "1"},
                "choices": [
                    {"index": 0, "delta": {"content": "a", "channel": "final"}, "stop_reason": 1}
                ],
                "citations": ["u"],
            }
        ]
    )
    assert response.message.content == "a"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("not a chunk", id="not-an-object"),
        pytest.param({"choices": {"index": 0}}, id="choices-not-list"),
        pytest.param({"choices": ["x"]}, id="choice-not-object"),
        pytest.param({"choices": [{"delta": "x"}]}, id="delta-not-object"),
        pytest.param({"choices": [{"delta": {"content": 5}}]}, id="content-number"),
        pytest.param({"choices": [{"delta": {"tool_calls": {"a": 1}}}]}, id="tool_calls-not-list"),
        pytest.param({"choices": [{"delta": {"tool_calls": [1]}}]}, id="fragment-not-object"),
        pytest.param(
            {"choices": [{"delta": {"tool_calls": [{"function": "f"}]}}]}, id="function-not-object"
        ),
        pytest.param(
            {"choices": [{"delta": {"tool_calls": [{"function": {"name": 3}}]}}]}, id="name-number"
        ),
        pytest.param({"choices": [{"delta": {}, "finish_reason": 1}]}, id="finish-reason-number"),
        pytest.param({"choices": [], "usage": [1]}, id="usage-not-object"),
    ],
)
def test_malformed_chunks_raise_stream_error(bad: Any) -> None:
    with pytest.raises(StreamError, match="malformed chunk"):
        StreamAssembler().feed(bad)


def test_partial_arguments_grow_with_the_stream() -> None:
    text = json.dumps({"city": "Paris", "days": [1, 2, 3]})
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    _, events = assemble([chunk(frag(0, "a", "f", ""))] + [chunk(frag(0, args=p)) for p in pieces])
    partials = [e.partial for e in events if isinstance(e, ToolCallDelta)]
    assert partials[-1] == {"city": "Paris", "days": [1, 2, 3]}
    # Trailing strings are shown as they grow.
    assert any(
        p.get("city") not in (None, "Paris") and "Paris".startswith(p["city"]) for p in partials
    )


def test_partial_arguments_can_be_switched_off() -> None:
    _, events = assemble([chunk(frag(0, "a", "f", '{"x": 1}'))], partial_arguments=False)
    assert [e.partial for e in events if isinstance(e, ToolCallDelta)] == [None]


def test_partial_parsing_work_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-parsing is geometric: the bytes parsed stay within a constant of the arguments."""
    import agentstream.wire._partial_call as module

    parsed = 0
    real = module.from_json  # type: ignore[attr-defined]

    def counting(text: str, **kwargs: Any) -> Any:
        nonlocal parsed
        parsed += len(text)
        return real(text, **kwargs)

    monkeypatch.setattr(module, "from_json", counting)
    text = json.dumps({"data": "x" * 200_000})
    assembler = StreamAssembler()
    assembler.feed(chunk(frag(0, "a", "f", "")))
    for i in range(0, len(text), 4):
        assembler.feed(chunk(frag(0, args=text[i : i + 4])))
    assert json.loads(assembler.finish().message.tool_calls[0].arguments) == json.loads(text)
    assert parsed < 12 * len(text)


# Work stays linear in the arguments received, whatever shape they come in: measured as
# the characters the assembler joins (each parse of the arguments joins them first).


class _CountingCall(_Call):
    __slots__ = ()
    joined: ClassVar[list[int]] = [0]

    def arguments(self) -> str:
        text = super().arguments()
        self.joined[0] += len(text)
        return text


class _CountingAssembler(StreamAssembler):
    def _open(self, choice: Any) -> _Call:
        call = super()._open(choice)
        call.__class__ = _CountingCall
        return call


def _joined_for(fragments: Iterator[dict[str, Any]]) -> int:
    _CountingCall.joined[0] = 0
    assembler = _CountingAssembler()
    for fragment in fragments:
        assembler.feed({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]})
    assembler.finish()
    return _CountingCall.joined[0]


def _whitespace(size: int) -> Iterator[dict[str, Any]]:
    yield {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}
    for _ in range(size // 4):
        yield {"index": 0, "function": {"arguments": "    "}}


def _name_repeated(size: int) -> Iterator[dict[str, Any]]:
    yield {"function": {"name": "f", "arguments": '{"a": "'}}
    for _ in range(size // 4):
        yield {"function": {"name": "f", "arguments": "}}{x"}}


def _id_changing(size: int) -> Iterator[dict[str, Any]]:
    yield {"index": 0, "id": "c0", "function": {"name": "f", "arguments": '{"a": "'}}
    for number in range(size // 4):
        yield {"index": 0, "id": f"c{number + 1}", "function": {"name": "f", "arguments": "xx]}"}}


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(_whitespace, id="whitespace-arguments"),
        pytest.param(_name_repeated, id="index-less-fragments-repeating-the-name"),
        pytest.param(_id_changing, id="a-new-id-on-every-fragment-at-one-index"),
    ],
)
def test_arguments_cost_linear_work_whatever_their_shape(
    shape: Callable[[int], Iterator[dict[str, Any]]],
) -> None:
    small, large = _joined_for(shape(20_000)), _joined_for(shape(80_000))
    assert large <= 16 * 80_000  # a bounded number of joins per character...
    assert large <= 6 * max(small, 1)  # ...so four times the input is about four times the work
