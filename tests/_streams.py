"""The recorded streams, and how to compare against their `final`.

The recordings live in the repository (`tests/recordings/chat` for Chat Completions,
`tests/recordings/responses` for the Responses API), so a clone runs every case. When a
`shared/streams` or `shared/responses-streams` folder sits beside the checkout (or
above it), recordings found there that the repository lacks are added, so new ones are
picked up before they are copied in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
STREAMS = HERE / "recordings" / "chat"
"""The in-repository Chat Completions recordings."""
RESPONSES = HERE / "recordings" / "responses"
"""The in-repository Responses API recordings."""


def _shared(name: str) -> Path | None:
    """The nearest `shared/<name>` folder above the tests that holds an INDEX.json."""
    for parent in HERE.parents:
        candidate = parent / "shared" / name
        if (candidate / "INDEX.json").is_file():
            return candidate
    return None


def _read_index(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "INDEX.json").read_text())
    return data


def _merged(folder: Path, shared: Path | None) -> tuple[dict[str, Any], dict[str, Path]]:
    """The index of `folder`, plus the entries of `shared` whose files it lacks."""
    index = _read_index(folder)
    paths = {name: folder / entry["file"] for name, entry in index.items()}
    if shared is not None and shared.resolve() != folder.resolve():
        for name, entry in _read_index(shared).items():
            path = shared / entry["file"]
            if name not in index and path.is_file():
                index[name] = entry
                paths[name] = path
    return index, paths


INDEX, _PATHS = _merged(STREAMS, _shared("streams"))
RESPONSES_INDEX, _RESPONSES_PATHS = _merged(RESPONSES, _shared("responses-streams"))


def stream_path(name: str) -> Path:
    """The file of a recorded Chat Completions stream."""
    return _PATHS[name]


def stream_params() -> list[Any]:
    """One pytest.param per recorded Chat Completions stream, id'd by its name."""
    return [pytest.param(name, id=name) for name in sorted(INDEX)]


def load_chunks(name: str) -> list[dict[str, Any]]:
    """The chunks of a recorded stream, in wire order."""
    text = stream_path(name).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def responses_path(name: str) -> Path:
    """The file of a recorded Responses API stream."""
    return _RESPONSES_PATHS[name]


def responses_params() -> list[Any]:
    """One pytest.param per recorded Responses API stream, id'd by its name."""
    return [pytest.param(name, id=name) for name in sorted(RESPONSES_INDEX)]


def load_events(name: str) -> list[dict[str, Any]]:
    """The events of a recorded Responses API stream, in wire order."""
    text = responses_path(name).read_text()
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
