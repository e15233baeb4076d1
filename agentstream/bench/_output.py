"""Benchmark section "output": a typed answer's partial value, kept up as it streams.

One answer of about `size` characters, a list of records (`list[Record]`, wrapped in
an object as the agent asks for it), streamed as text 4 characters a chunk. The
assembler alone and the assembler followed by the typed-output watch (the partial
parse, the entries complete so far, each one validated once) take turns over the
same chunks, made in batches outside the timed region, until each has been fed at
least `min_chunks` chunks. The difference is what typed output adds per chunk; it
should stay flat from 1 KB to 1 MB, as for tool arguments.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from ..output._spec import OutputSpec, output_spec
from ..output._watch import OutputWatch
from ..wire.chat._assemble import StreamAssembler
from ._assembly import _timed

__all__ = ["answer_text", "time_output"]

_BATCH = 256


class Record(BaseModel):
    """One entry of the benchmark's typed answer."""

    name: str
    count: int
    tags: list[str]


def answer_text(size: int) -> str:
    """The JSON of a `list[Record]` answer of about `size` characters, as the agent asks it."""
    records: list[dict[str, Any]] = []
    length = 16
    while length < size:
        record = {"name": f"record {len(records)}", "count": len(records), "tags": ["a", "bc"]}
        records.append(record)
        length += len(json.dumps(record)) + 2
    return json.dumps({"response": records})


def _batches(text: str) -> Iterator[list[dict[str, Any]]]:
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    batch: list[dict[str, Any]] = [role]
    for start in range(0, len(text), 4):
        delta = {"content": text[start : start + 4]}
        batch.append({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        if len(batch) == _BATCH:
            yield batch
            batch = []
    batch.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield batch


def _assembler_alone(text: str) -> tuple[float, int]:
    assembler = StreamAssembler()
    emitted = 0

    def feed(chunk: Any) -> None:  # the same frame as `_with_watch`'s, without the watch
        nonlocal emitted
        events = assembler.feed(chunk)
        if events:
            emitted += 1

    seconds, fed, _ = _timed(_batches(text), feed, assembler.finish, math.inf)
    return seconds, fed


def _with_watch(text: str, spec: OutputSpec, counts: list[int]) -> tuple[float, int]:
    assembler = StreamAssembler()
    watch = OutputWatch(spec, 1, tool=False)
    emitted = 0

    def feed(chunk: Any) -> None:
        nonlocal emitted
        events = assembler.feed(chunk)
        if events:
            emitted += len(watch.feed(events))

    def finish() -> None:
        nonlocal emitted
        emitted += len(watch.finish())
        spec.parse(assembler.finish().message.content or "")  # the whole answer, once

    seconds, fed, _ = _timed(_batches(text), feed, finish, math.inf)
    counts.append(emitted)
    return seconds, fed


def time_output(size: int, min_chunks: int) -> dict[str, float]:
    """µs per chunk of the assembler alone and with the watch, and the partial values made."""
    text = answer_text(size)
    spec = output_spec(list[Record])
    seconds = {"assembler": 0.0, "typed": 0.0}
    fed = {"assembler": 0, "typed": 0}
    counts: list[int] = []
    while True:
        spent, count = _assembler_alone(text)
        seconds["assembler"] += spent
        fed["assembler"] += count
        spent, count = _with_watch(text, spec, counts)
        seconds["typed"] += spent
        fed["typed"] += count
        if min(fed.values()) >= min_chunks:
            break
    result = {name: seconds[name] / fed[name] * 1e6 for name in seconds}
    result["partial_values"] = counts[0]
    result["chunks"] = fed["typed"] / len(counts)
    return result
