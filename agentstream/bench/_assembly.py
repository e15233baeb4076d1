"""Benchmark section "assembly": merging pre-decoded chunks, with no I/O at all.

Three mergers read the same stream, one tool call whose JSON arguments arrive in
4-character fragments: agentstream's `StreamAssembler`, the SDK's
`ChatCompletionStreamState` (fed the SDK's typed chunks, built beforehand), and a
minimal merge loop (a dict per call index, a list of pieces, one join at the end),
the floor any correct merger pays. Chunks are decoded from their wire bytes in
batches outside the timed region, so a 1 MB stream never holds all its chunks at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from time import perf_counter
from typing import Any

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from ..wire.chat._assemble import StreamAssembler
from ._serve import make_arguments

__all__ = ["MERGERS", "argument_stream", "time_merger", "time_side_by_side"]

_BATCH = 256
_HEAD = (
    '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    '"model":"bench","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":'
)


def _chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
    tail = ',"logprobs":null,"finish_reason":' + json.dumps(finish) + "}]}"
    return (_HEAD + json.dumps(delta, separators=(",", ":")) + tail).encode()


def argument_stream(size: int) -> Iterator[bytes]:
    """The `data:` payloads of a response with one call of `size`-character arguments.

    Shaped as OpenAI streams it: a role chunk, the call's id and name, the arguments
    in 4-character fragments, the finish reason, then usage.
    """
    text = json.dumps(make_arguments(size), separators=(",", ":"))
    yield _chunk({"role": "assistant", "content": None, "refusal": None})
    header = {"index": 0, "id": "call_0", "type": "function"}
    yield _chunk({"tool_calls": [{**header, "function": {"name": "write", "arguments": ""}}]})
    for start in range(0, len(text), 4):
        fragment = {"index": 0, "function": {"arguments": text[start : start + 4]}}
        yield _chunk({"tool_calls": [fragment]})
    yield _chunk({}, "tool_calls")
    usage = {"prompt_tokens": 10, "completion_tokens": len(text) // 4, "total_tokens": 0}
    yield (
        _HEAD.partition('"choices"')[0] + '"choices":[],"usage":' + json.dumps(usage) + "}"
    ).encode()


class _Minimal:
    """The floor: a dict per call index, a list of pieces, one join at the end."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: dict[str, Any]) -> None:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content = delta.get("content")
            if content:
                self.text.append(content)
            for fragment in delta.get("tool_calls") or ():
                call = self.calls.get(fragment["index"])
                if call is None:
                    call = self.calls[fragment["index"]] = {"id": None, "name": None, "pieces": []}
                if fragment.get("id"):
                    call["id"] = fragment["id"]
                function = fragment.get("function")
                if function:
                    if function.get("name"):
                        call["name"] = function["name"]
                    if function.get("arguments"):
                        call["pieces"].append(function["arguments"])

    def finish(self) -> Any:
        return "".join(self.text), {i: "".join(c["pieces"]) for i, c in self.calls.items()}


def _run_minimal(batches: Iterator[list[Any]], budget: float) -> tuple[float, int, bool]:
    merger = _Minimal()
    feed = merger.feed
    return _timed(batches, feed, merger.finish, budget)


def _run_agentstream(batches: Iterator[list[Any]], budget: float) -> tuple[float, int, bool]:
    assembler = StreamAssembler()
    return _timed(batches, assembler.feed, assembler.finish, budget)


def _run_sdk(batches: Iterator[list[Any]], budget: float) -> tuple[float, int, bool]:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    return _timed(batches, state.handle_chunk, state.get_final_completion, budget)


def _timed(
    batches: Iterator[list[Any]],
    feed: Callable[[Any], Any],
    finish: Callable[[], Any],
    budget: float,
) -> tuple[float, int, bool]:
    """Feed the batches, timing only the feeding; stop once `budget` seconds are spent.

    Returns (seconds, chunks fed, whether the whole stream was fed).
    """
    spent = 0.0
    fed = 0
    for batch in batches:
        started = perf_counter()
        for chunk in batch:
            feed(chunk)
        spent += perf_counter() - started
        fed += len(batch)
        if spent > budget:
            return spent, fed, False
    started = perf_counter()
    finish()
    return spent + perf_counter() - started, fed, True


def _dict_batches(size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for payload in argument_stream(size):
        batch.append(json.loads(payload))
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _typed_batches(size: int) -> Iterator[list[Any]]:
    for batch in _dict_batches(size):
        yield [ChatCompletionChunk.model_validate(chunk) for chunk in batch]


Runner = Callable[[Iterator[list[Any]], float], tuple[float, int, bool]]

MERGERS: dict[str, tuple[Runner, Callable[[int], Iterator[list[Any]]]]] = {
    "minimal": (_run_minimal, _dict_batches),
    "agentstream": (_run_agentstream, _dict_batches),
    "sdk_state": (_run_sdk, _typed_batches),
}
"""Each merger: how to run it, and how to make the chunks it reads."""


def time_merger(name: str, size: int, budget: float) -> tuple[float, int, bool]:
    """µs per chunk for merger `name` on one pass of a `size`-character argument stream.

    For the slow SDK state, which one pass times well; the fast mergers are timed over
    many passes by `time_side_by_side`. Returns (µs per chunk, chunks fed, whether the
    whole stream was fed within `budget`).
    """
    run, batches = MERGERS[name]
    seconds, fed, whole = run(batches(size), budget)
    return seconds / fed * 1e6, fed, whole


def time_side_by_side(names: list[str], size: int, min_chunks: int) -> dict[str, float]:
    """µs per chunk for each fast merger in `names`, their passes taken in turn.

    One whole pass of each, by a fresh merger (so the cost of starting and finishing a
    stream stays in), then again, until each has been fed at least `min_chunks` chunks:
    a short stream alone takes a fraction of a millisecond. A slow moment of a shared
    machine then falls on all of them alike, rather than on whichever was being
    timed, and skews their ratio less.
    """
    seconds = dict.fromkeys(names, 0.0)
    fed = dict.fromkeys(names, 0)
    while True:
        for name in names:
            run, batches = MERGERS[name]
            spent, count, _ = run(batches(size), math.inf)
            seconds[name] += spent
            fed[name] += count
        if min(fed.values()) >= min_chunks:
            return {name: seconds[name] / fed[name] * 1e6 for name in names}
