"""SSE decoding: framing, line ends, comments, and split reads."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentstream import StreamError
from agentstream.wire._sse import ServerSentEvent, SSEDecoder, decode_chunk

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


def _feed_in_reads(decoder: SSEDecoder, body: bytes, size: int) -> list[ServerSentEvent]:
    events = []
    for start in range(0, len(body), size):
        events += decoder.feed(body[start : start + size])
    return events


def test_a_long_line_read_in_pieces_is_not_copied_on_every_read() -> None:
    line = b'data: {"x": "' + b"y" * (8 << 20)
    decoder = SSEDecoder()
    tracemalloc.start()
    try:
        assert _feed_in_reads(decoder, line, 64 * 1024) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The pieces are kept as read: joining the line with each read would hold it twice.
    assert peak < 1.25 * len(line)
    [event] = decoder.feed(b'"}\n\n')
    assert len(event.data) == len(line) - 6 + 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"data: " + b"y" * 100_000, id="one-line"),
        pytest.param(b"data: yyyyyyyyy\n" * 20_000, id="many-data-lines-of-one-event"),
        pytest.param(b"event: error\n" + b"data: " + b"y" * 100_000 + b"\n", id="after-a-name"),
    ],
)
@pytest.mark.parametrize("read", [1000, 1 << 20])
def test_an_event_past_the_limit_is_refused_before_it_is_whole(body: bytes, read: int) -> None:
    decoder = SSEDecoder(max_event_size=50_000)
    with pytest.raises(StreamError, match="more than 50000 bytes"):
        _feed_in_reads(decoder, body + b"\n\n", read)
    # Events under the limit, however many, pass.
    small = SSEDecoder(max_event_size=50_000)
    assert len(_feed_in_reads(small, b"data: yyyy\n\n" * 20_000, read)) == 20_000


@given(st.integers(0, 200), st.integers(1, 64), st.booleans())
def test_the_secret_is_masked_in_the_bytes_wherever_the_reads_cut(
    at: int, read: int, crlf: bool
) -> None:
    secret = "sk-secret-0123456789"
    body = BODY[:at] + secret.encode() + BODY[at:]
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    decoder = SSEDecoder(secret=secret)
    events = _feed_in_reads(decoder, body, read) + decoder.flush()
    assert not any("secret" in event.data or "secret" in event.event for event in events)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"event:done\ndata:{}\n\n", [("done", "{}")], id="no-spaces"),
        pytest.param(b"event:  two\ndata:  x\n\n", [(" two", " x")], id="one-space-taken"),
        pytest.param(b"event: e\n: note\n\n", [], id="event-without-data"),
        pytest.param(b"event: e\nid: 3\n\n", [], id="event-then-other-field"),
        pytest.param(b"event: e\ndata: a\ndata: b\n\n", [("e", "a\nb")], id="two-data-lines"),
        pytest.param(
            "data: a\n\nevent: é\ndata: ü\n\n".encode(), [("", "a"), ("é", "ü")], id="utf-8"
        ),
    ],
)
def test_event_blocks_read_whole_match_the_line_by_line_reading(
    body: bytes, expected: list[tuple[str, str]]
) -> None:
    # Blocks of `event:` and one `data:` line take a shortcut; read a byte at a time,
    # the same body goes line by line.
    assert decode_all([body]) == [ServerSentEvent(*pair) for pair in expected]
    assert decode_all([body[i : i + 1] for i in range(len(body))]) == decode_all([body])


def _chunks_one_way(pieces: list[bytes]) -> list[object]:
    """The chunks of `pieces` read as `ModelStream` reads them, or the error raised."""
    decoder = SSEDecoder(secret="sk-key")
    held: dict[tuple[object, ...], str] = {}
    found: list[object] = []
    try:
        for piece in pieces:
            found.extend(decoder.chunks(piece, held))
        found.extend(decode_chunk(event, held) for event in decoder.flush())
    except StreamError as exc:
        found.append(("error", str(exc)))
    return found


def _chunks_the_long_way(pieces: list[bytes]) -> list[object]:
    """The same, through the general path: `feed` and `decode_chunk`, a byte at a time."""
    decoder = SSEDecoder(secret="sk-key")
    held: dict[tuple[object, ...], str] = {}
    found: list[object] = []
    try:
        for piece in pieces:
            for byte in range(len(piece)):
                for event in decoder.feed(piece[byte : byte + 1]):
                    found.append(decode_chunk(event, held))
        found.extend(decode_chunk(event, held) for event in decoder.flush())
    except StreamError as exc:
        found.append(("error", str(exc)))
    return found


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(b'data: {"a": 1}\n\n', id="data"),
        pytest.param(b"data: [DONE]\n\n", id="done"),
        pytest.param(b'data:{"a": 1}\n\n', id="no-space"),
        pytest.param(b'data: {"a":\ndata: 1}\n\n', id="two-data-lines"),
        pytest.param(b'data: {"a": 1}\nid: 3\n\n', id="data-then-id"),
        pytest.param(b'data: {"a": 1}\r\n\r\n', id="crlf"),
        pytest.param(b'event: e\ndata: {"a": 1}\n\n', id="event-and-data"),
        pytest.param(b'event: \ndata: {"a": 1}\n\n', id="empty-name"),
        pytest.param(b'event: error\ndata: "overloaded"\n\n', id="error-event"),
        pytest.param(b'event: error\ndata: {"error": {"message": "x"}}\n\n', id="error-object"),
        pytest.param(b'event: error\ndata: {"message": "x"}\n\n', id="error-as-an-object"),
        pytest.param(b'event: errors\ndata: {"a": 1}\n\n', id="not-quite-error"),
        pytest.param(b"event: e\n\n", id="event-alone"),
        pytest.param(b'event: e\nid: 1\ndata: {"a": 1}\n\n', id="event-id-data"),
        pytest.param(b'data: {"a": 1}\n\ndata: {"b": 2}\n\n', id="two-events"),
        pytest.param(b": comment\n\n", id="comment"),
        pytest.param('data: {"t": "é sk-key"}\n\n'.encode(), id="utf-8-and-secret"),
        pytest.param(b'data: {"t": "\xff"}\n\n', id="not-utf-8"),
        pytest.param(b'data: {"t": "\\ud800"}\n\n', id="lone-surrogate"),
        pytest.param(b'data: {"t": "a\\ud83d"}\n\n', id="first-half-of-a-pair"),
        pytest.param(b'data: {"t": "\\ude00b"}\n\n', id="second-half-of-a-pair"),
        pytest.param(b"data: [1, 2]\n\n", id="not-an-object"),
        pytest.param(b'data: {"a": \n\n', id="not-json"),
        pytest.param(b'data: {"a": 1}\n\ndata: [1]\n\ndata: {"b": 2}\n\n', id="bad-in-the-middle"),
    ],
)
@pytest.mark.parametrize("before", [b"", b'data: {"left": ', b"event: x\n", b'data: {"y": 1}\r'])
def test_chunks_of_a_read_match_the_general_path(read: bytes, before: bytes) -> None:
    # Most reads of a stream are one whole event: `chunks` takes a shorter path for
    # them, unless something is left from the reads before (a line, a name, a `\r`) or
    # it cannot read them (an error event, text that is not UTF-8, a lone surrogate).
    pieces = [b'data: {"n": 0}\n\n', before, read, read]
    found = _chunks_one_way(pieces)
    assert found == _chunks_the_long_way(pieces)
    assert "sk-key" not in repr(found)


def test_chunks_of_one_whole_event_past_the_limit_are_refused() -> None:
    decoder = SSEDecoder(max_event_size=100)
    assert list(decoder.chunks(b'data: {"y": "' + b"y" * 60 + b'"}\n\n', {})) == [{"y": "y" * 60}]
    with pytest.raises(StreamError, match="more than 100 bytes"):
        list(decoder.chunks(b'event: e\ndata: {"y": "' + b"y" * 120 + b'"}\n\n', {}))
