"""SSE decoding: framing, line ends, comments, and split reads."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentstream import StreamError
from agentstream._sse import ServerSentEvent, SSEDecoder, decode_chunk

BODY = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"a": 1}\n\n'
    b"event: error\n"
    b'data: {"error": {"message": "x"}}\n\n'
    b"id: 7\nretry: 100\n"
    b'data: {"b":\n'
    b"data: 2}\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent("", '{"a": 1}'),
    ServerSentEvent("error", '{"error": {"message": "x"}}'),
    ServerSentEvent("", '{"b":\n2}'),
    ServerSentEvent("", "[DONE]"),
]


def decode_all(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.flush()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BODY, id="lf"),
        pytest.param(BODY.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(BODY.replace(b"\n", b"\r"), id="cr"),
    ],
)
def test_decodes_whole_body(body: bytes) -> None:
    assert decode_all([body]) == EXPECTED


@given(st.lists(st.integers(0, len(BODY) * 2), max_size=12), st.booleans())
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int], crlf: bool) -> None:
    body = BODY.replace(b"\n", b"\r\n") if crlf else BODY
    points = sorted({c % (len(body) + 1) for c in cuts})
    bounds = [0, *points, len(body)]
    pieces = [body[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode_all(pieces) == EXPECTED


def test_multibyte_character_split_across_reads() -> None:
    data = 'data: {"t": "é😊"}\n\n'.encode()
    assert decode_all([data[:12], data[12:14], data[14:]]) == [ServerSentEvent("", '{"t": "é😊"}')]


def test_unterminated_last_event_is_dispatched_on_flush() -> None:
    assert decode_all([b'data: {"x": 1}']) == [ServerSentEvent("", '{"x": 1}')]


def test_decode_chunk() -> None:
    assert decode_chunk(ServerSentEvent("", '{"a": 1}')) == {"a": 1}
    assert decode_chunk(ServerSentEvent("", "[DONE]")) is None
    assert decode_chunk(ServerSentEvent("error", '"overloaded"')) == {"error": "overloaded"}
    with pytest.raises(StreamError, match="not JSON"):
        decode_chunk(ServerSentEvent("", '{"choices": ['))
    with pytest.raises(StreamError, match="not a JSON object"):
        decode_chunk(ServerSentEvent("", "[1, 2]"))


def test_decode_chunk_reads_what_only_json_accepts() -> None:
    # pydantic-core refuses a lone surrogate escape; json takes it, and the lone half
    # becomes U+FFFD so the text can be sent on; a whole pair of escapes is its character.
    assert decode_chunk(ServerSentEvent("", '{"t": "\\ud800"}')) == {"t": "\ufffd"}
    assert decode_chunk(ServerSentEvent("", '{"t": "\\ud83d\\ude00"}')) == {"t": "\U0001f600"}


def test_events_after_a_partial_one_and_comments_keep_their_order() -> None:
    decoder = SSEDecoder()
    first = decoder.feed(b'data: {"a": 1}\n\ndata: {"b":')
    rest = decoder.feed(b' 2}\n\n: keep-alive\n\ndata: {"c": 3}\n\n')
    assert first + rest == [
        ServerSentEvent("", '{"a": 1}'),
        ServerSentEvent("", '{"b": 2}'),
        ServerSentEvent("", '{"c": 3}'),
    ]
