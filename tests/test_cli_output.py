"""`python -m agentstream --output-schema FILE` and `--output MODULE:Type`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentstream.cli import main

FLAT_OUT = ["--ttft", "0", "--tps", "0", "--no-color", "--no-default-tools"]
QUESTION = "Plan 4 nights in Lisbon for Ann Smith"
TRIP = {
    "title": "Trip",
    "type": "object",
    "properties": {
        "destination": {"type": "string"},
        "nights": {"type": "integer", "minimum": 1},
        "travellers": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["destination", "nights", "travellers"],
}
EXPECTED = {"destination": "Lisbon", "nights": 4, "travellers": ["Ann Smith"]}


def printed_output(out: str) -> object:
    """The one JSON value stdout holds (typed output, stdout not a terminal)."""
    assert out.count("\n") == 1, out
    return json.loads(out)


@pytest.mark.parametrize("mode", ["auto", "response_format", "tool"])
def test_output_schema_prints_the_validated_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    schema = tmp_path / "trip.json"
    schema.write_text(json.dumps(TRIP))
    argv = ["-p", QUESTION, "--output-schema", str(schema), "--output-mode", mode, *FLAT_OUT]
    assert main(argv) == 0
    assert printed_output(capsys.readouterr().out) == EXPECTED


def test_output_type_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "trip_types.py"
    module.write_text(
        "from pydantic import BaseModel\n\n"
        "class Trip(BaseModel):\n    destination: str\n    nights: int\n"
    )
    assert main(["--json", "-p", QUESTION, "--output", f"{module}:Trip", *FLAT_OUT]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == {"destination": "Lisbon", "nights": 4}
    # With typed output, --json's event lines go to stderr: stdout is the answer alone.
    events = [json.loads(line) for line in printed.err.splitlines()]
    ready = [event for event in events if event["type"] == "output_ready"]
    assert [event["value"] for event in ready] == [{"destination": "Lisbon", "nights": 4}]
    assert events[-1]["result"]["output"] == {"destination": "Lisbon", "nights": 4}
    assert any(event["type"] == "output_delta" for event in events)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--output", "no_such_xyz:T"], "--output no_such_xyz: no such", id="module"),
        pytest.param(["--output", "json"], "write MODULE:Type", id="no-colon"),
        pytest.param(["--output", "json:Nope"], "json has no 'Nope'", id="no-name"),
        pytest.param(["--output-schema", "/no/such.json"], "cannot read it", id="no-file"),
        pytest.param(["--output-schema", "SCHEMA", "--output", "json:x"], "not both", id="both"),
    ],
)  # fmt: skip
def test_bad_output_flags_are_one_line_setup_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(TRIP))
    argv = [str(schema) if arg == "SCHEMA" else arg for arg in argv]
    assert main(["-p", "hi", *argv, *FLAT_OUT]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_schema_that_is_not_valid_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = tmp_path / "bad.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": 5}}}))
    assert main(["-p", "hi", "--output-schema", str(schema), *FLAT_OUT]) == 2
    assert "invalid JSON schema" in capsys.readouterr().err


# --- the same on the Responses API ---------------------------------------------------------

WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]

EARLY_TOOLS = '''
from agentstream import tool

@tool(early=True)
async def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"Sunny in {location}"
'''


@pytest.mark.parametrize("wire", WIRES)
def test_output_schema_prints_the_validated_json_on_either_wire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wire: str
) -> None:
    schema = tmp_path / "trip.json"
    schema.write_text(json.dumps(TRIP))
    argv = ["-p", QUESTION, "--output-schema", str(schema), "--api", wire, *FLAT_OUT]
    assert main(argv) == 0
    assert printed_output(capsys.readouterr().out) == EXPECTED


@pytest.mark.parametrize("wire", WIRES)
def test_early_starts_a_tool_before_the_stream_ends_on_either_wire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wire: str
) -> None:
    tools = tmp_path / "early_tools.py"
    tools.write_text(EARLY_TOOLS)
    argv = ["--json", "--early", "--api", wire, "--tools", str(tools),
            "-p", "What's the weather in Paris and Tokyo?", *FLAT_OUT]  # fmt: skip
    assert main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first_step = [e for e in events if e.get("step") == 1]
    deltas = {e["index"] for e in first_step if e["type"] == "tool_call_delta"}
    assert len(deltas) == 2
    last = max(deltas)
    started = next(n for n, e in enumerate(first_step) if e["type"] == "tool_started")
    last_delta = max(
        n for n, e in enumerate(first_step) if e["type"] == "tool_call_delta" and e["index"] == last
    )
    assert started < last_delta  # the first call ran while the second still streamed
    finished = [e["output"] for e in events if e["type"] == "tool_finished"]
    assert sorted(finished) == ["Sunny in Paris", "Sunny in Tokyo"]
