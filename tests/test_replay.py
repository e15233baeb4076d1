"""`python -m agentstream replay`: recorded streams in, one JSON document out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentstream.cli import main

from ._streams import (
    INDEX,
    RESPONSES_INDEX,
    assert_matches_final,
    responses_path,
    stream_params,
    stream_path,
)


@pytest.mark.parametrize("name", stream_params())
def test_replay_prints_the_final_message(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(stream_path(name))]) == 0
    document = json.loads(capsys.readouterr().out)
    assert_matches_final(document["choices"], INDEX[name]["final"])


def test_replay_reads_a_raw_sse_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "openai-python__parallel-tools-weather-stock"
    lines = (stream_path(name)).read_text().splitlines()
    body = ": keep-alive\r\n\r\n" + "".join(f"data: {line}\r\n\r\n" for line in lines)
    path = tmp_path / "body.sse"
    path.write_text(body + "data: [DONE]\r\n\r\n")
    assert main(["replay", str(path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert_matches_final(document["choices"], INDEX[name]["final"])
    assert document["usage"]["total_tokens"] > 0
    assert "errors" not in document


def test_replay_reports_error_payloads(capsys: pytest.CaptureFixture[str]) -> None:
    name = "pydantic-ai__openrouter-minimax-error-finish"
    assert main(["replay", str(stream_path(name))]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == [{"code": 400, "message": "Token limit reached"}]


def test_replay_generates_stable_ids(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(stream_path("tgi__llama31-legacy-name-inside-arguments"))
    main(["replay", path])
    first = capsys.readouterr().out
    main(["replay", path])
    assert capsys.readouterr().out == first
    call = json.loads(first)["choices"][0]["message"]["tool_calls"][0]
    assert call["id"] == "call_replay_1"
    assert call["function"]["name"] is None


def test_replay_events(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(stream_path("openai-python__single-tool-GetWeatherArgs"))
    assert main(["replay", "--events", path]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "tool_call_started"
    assert events[0]["name"] == "GetWeatherArgs"
    assert {e["type"] for e in events[1:]} == {"tool_call_delta"}
    assert events[-1]["partial"] == {"city": "Edinburgh", "country": "UK", "units": "c"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"choices": []}\n{"choices": [\n', "line 2: not JSON", id="bad-json-line"),
        pytest.param("[1, 2]\n", "line 1: not a JSON object", id="not-object"),
        pytest.param('data: {"choices": [\n\n', "malformed chunk", id="bad-sse"),
        pytest.param('{"choices": "x"}\n', "choices is not a list", id="bad-structure"),
    ],
)
def test_malformed_file_is_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    process = subprocess.run(
        [sys.executable, "-m", "agentstream", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 2
    assert process.stdout == ""
    assert process.stderr.count("\n") == 1
    assert message in process.stderr
    assert "Traceback" not in process.stderr


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [
        "vercel-ai__lmstudio-tool-call-1",
        "chatlas__chat--chat-callbacks-1",
        "pydantic-ai__raw-cot-stream-openrouter",
    ],
)
def test_replay_reads_a_responses_recording(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(responses_path(name))]) == 0
    document = json.loads(capsys.readouterr().out)
    final = RESPONSES_INDEX[name]["final"]
    assert document == {
        "status": final["status"],
        "output": final["output"],
        "usage": final["usage"],
        "errors": [],
    }


def test_replay_prints_responses_events(capsys: pytest.CaptureFixture[str]) -> None:
    name = "vercel-ai__lmstudio-tool-call-1"
    assert main(["replay", "--events", str(responses_path(name))]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    calls = [c for c in RESPONSES_INDEX[name]["final"]["output"] if c["type"] == "function_call"]
    started = [e for e in events if e["type"] == "tool_call_started"]
    assert [e["name"] for e in started] == [c["name"] for c in calls]
    last = [e for e in events if e["type"] == "tool_call_delta"][-1]
    assert last["partial"] == json.loads(calls[-1]["arguments"])
