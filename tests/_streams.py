"""The recorded streams in ../shared/streams, and how to compare against their `final`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

STREAMS = Path(__file__).resolve().parents[2] / "shared" / "streams"


def _index() -> dict[str, Any]:
    path = STREAMS / "INDEX.json"
    if not path.exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"the recorded streams are missing: {STREAMS}")
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


INDEX = _index()


needs_streams = pytest.mark.skipif(not INDEX, reason=f"{STREAMS} not found")
"""For tests that read particular recordings (outside CI they skip when none are there)."""


def stream_params() -> list[Any]:
    """One pytest.param per recorded stream, id'd by its name."""
    if not INDEX:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{STREAMS} not found"))]
    return [pytest.param(name, id=name) for name in sorted(INDEX)]


def load_chunks(name: str) -> list[dict[str, Any]]:
    """The chunks of a recorded stream, in wire order."""
    text = (STREAMS / INDEX[name]["file"]).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _arguments(text: str) -> Any:
    try:
        return ("json", json.loads(text))
    except ValueError:
        return ("raw", text)


def assert_matches_final(choices: list[dict[str, Any]], final: list[dict[str, Any]]) -> None:
    """Compare assembled choices (replay JSON shape) with a recording's `final`.

    Text exactly; tool calls by name and parsed arguments (raw text when they are not
    JSON); ids where the recording has a non-empty one; reasoning where it has one.
    """
    assert len(choices) == len(final)
    for got, want in zip(choices, final, strict=True):
        assert got["index"] == want["index"]
        assert got.get("finish_reason") == want["finish_reason"]
        message, expected = got["message"], want["message"]
        assert message.get("content") == expected.get("content")
        assert message.get("refusal") == expected.get("refusal")
        if "reasoning_content" in expected:
            assert message.get("reasoning") == expected["reasoning_content"]
        calls, expected_calls = message.get("tool_calls", []), expected.get("tool_calls", [])
        assert len(calls) == len(expected_calls)
        for call, expected_call in zip(calls, expected_calls, strict=True):
            assert call["type"] == "function"
            assert call["function"]["name"] == expected_call["function"]["name"]
            got_args = _arguments(call["function"]["arguments"])
            want_args = _arguments(expected_call["function"]["arguments"] or "{}")
            assert got_args == want_args
            if expected_call["id"]:
                assert call["id"] == expected_call["id"]
            else:
                assert call["id"]  # a generated one
