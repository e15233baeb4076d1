"""Round trips on the Responses API: what the next request carries back, end to end.

The recorded case (`deepseek__pydantic-ai-responses-reasoning-item`) is served by a
scripted model on loopback, the command line (`--api responses`) runs against it, and
the next request it sends is checked against the case's `must_carry` / `must_not_carry`.
The recording is read from `tests/recordings/roundtrip/`, else from the nearest
`shared/roundtrip` folder above the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

from agentstream.cli import main
from agentstream.testing import ModelRequest, Reply, ScriptedModel, serve

HERE = Path(__file__).resolve().parent
CASE = "deepseek__pydantic-ai-responses-reasoning-item"
_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "NO_COLOR")
_STEP = re.compile(r"([^.\[]+)|\[(\d+)\]|\[(\w+)=([^\]]+)\]")


def _found(name: str) -> Path | None:
    """`name` in the repository's round trips, else in the nearest shared folder."""
    candidates = [HERE / "recordings" / "roundtrip" / name]
    candidates += [parent / "shared" / "roundtrip" / name for parent in HERE.parents]
    return next((path for path in candidates if path.is_file()), None)


def _case() -> dict[str, Any]:
    index = _found("INDEX.json")
    if index is None:
        pytest.skip("no round-trip INDEX.json beside the tests or in a shared folder")
    entry: dict[str, Any] = json.loads(index.read_text())[CASE]
    return entry


def _events(entry: dict[str, Any]) -> list[dict[str, Any]]:
    path = _found(entry["file"])
    assert path is not None, entry["file"]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_MISSING = object()


def at(data: Any, path: str) -> Any:
    """The value at a round-trip path (`a.b`, `[0]`, `[type=x]`), or `_MISSING`."""
    for name, number, key, value in _STEP.findall(path):
        if name:
            data = data.get(name, _MISSING) if isinstance(data, dict) else _MISSING
        elif number:
            index = int(number)
            ok = isinstance(data, list) and index < len(data)
            data = data[index] if ok else _MISSING
        else:
            found = [x for x in data or () if isinstance(x, dict) and x.get(key) == value]
            data = found[0] if isinstance(data, list) and found else _MISSING
        if data is _MISSING:
            return _MISSING
    return data


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("input[type=reasoning].content[0].text", "r", id="keyed"),
        pytest.param("input[1].call_id", "c", id="indexed"),
        pytest.param("input[type=message].id", _MISSING, id="absent"),
    ],
)
def test_paths_are_read_as_the_index_writes_them(path: str, expected: Any) -> None:
    body = {
        "input": [
            {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "r"}]},
            {"type": "function_call", "call_id": "c"},
        ]
    }
    assert at(body, path) is expected or at(body, path) == expected


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _tool_file(folder: Path, results: dict[str, str]) -> Path:
    """A tools file whose tools return the case's recorded results."""
    lines = ["from agentstream import tool", ""]
    for name, result in results.items():
        lines += [
            "@tool",
            f"def {name}(city: str) -> str:",
            f'    """Look up {name.replace("_", " ")} for a city."""',
            f"    return {result!r}",
            "",
        ]
    path = folder / "roundtrip_tools.py"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def served() -> Iterator[tuple[ScriptedModel, int]]:
    entry = _case()
    model = ScriptedModel([Reply(chunks=_events(entry)), Reply("It is 21 degrees in Tokyo.")])
    with anyio.from_thread.start_blocking_portal() as portal:
        future, port = portal.start_task(serve, model)
        yield model, port
        future.cancel()


@pytest.mark.usefixtures("clean_env")
def test_the_deepseek_reasoning_item_goes_back_through_the_cli(
    served: tuple[ScriptedModel, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = _case()
    model, port = served
    run = entry["run"]
    assert run["api"] == "responses"
    tools = _tool_file(tmp_path, run["tool_results"])
    argv = [
        "--api", "responses", "--base-url", f"http://127.0.0.1:{port}/v1",
        "--api-key", "sk-roundtrip", "--model", entry["model"], "--tools", str(tools),
        "--max-retries", "0", "--no-color", "--json", "-p", run["prompts"][0],
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    requests: list[ModelRequest] = model.requests
    body = requests[run["check_request"]].body
    for path in entry["must_carry"]:
        assert at(body, path) == entry["expected"][path], path
    for path in entry["must_not_carry"]:
        assert at(body, path) is _MISSING, path
    kinds = [item.get("type") for item in body["input"]]
    # The reasoning item goes back before the function call it preceded, whole.
    assert kinds.index("reasoning") < kinds.index("function_call")
    reasoning = at(body, "input[type=reasoning]")
    recorded = entry["next_input_items"][0]
    assert reasoning["id"] == recorded["id"]
    assert reasoning["content"] == recorded["content"]
    assert "encrypted_content" not in reasoning  # none was streamed: none is invented
    output = at(body, "input[type=function_call_output]")
    assert output["output"] == run["tool_results"]["get_temperature"]


# --- what goes back, item by item ----------------------------------------------------------


def _turn() -> list[dict[str, Any]]:
    """An OpenAI-style turn: encrypted reasoning, a commentary message, a call."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc",
                 "status": "completed"}  # fmt: skip
    text = {"type": "output_text", "text": "Checking.", "annotations": []}
    message = {"type": "message", "id": "msg_1", "role": "assistant", "phase": "commentary",
               "status": "completed", "content": [text]}  # fmt: skip
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "look",
            "arguments": '{"q": "x"}', "status": "completed"}  # fmt: skip
    output: list[dict[str, Any]] = [reasoning, message, call]
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_1", "output": []}}
    ]
    for index, item in enumerate(output):
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    response = {"id": "resp_1", "status": "completed", "output": output}
    return [*events, {"type": "response.completed", "response": response}]


@pytest.mark.anyio
@pytest.mark.parametrize("resumed", [pytest.param(False, id="run"), pytest.param(True, id="saved")])
async def test_items_go_back_in_order_with_their_phase_and_ids(resumed: bool) -> None:
    from agentstream import Agent, RunState, tool

    @tool(needs_approval=resumed)
    def look(q: str) -> str:
        """Look."""
        return "seen"

    model = ScriptedModel([Reply(chunks=_turn()), Reply("Done.")])
    agent = Agent(client=model.async_client(), model="m", api="responses", tools=[look])
    result = await agent.run("go")
    if resumed:  # paused for approval, saved as JSON, taken up again
        assert result.stop_reason == "approval_required"
        assert result.state is not None
        saved = RunState.from_json(result.state.to_json())
        result = await agent.resume(saved, approvals={"call_a": True})
    assert result.output == "Done."
    items = model.requests[1].body["input"]
    assert [item["type"] for item in items] == [
        "message", "reasoning", "message", "function_call", "function_call_output",
    ]  # fmt: skip
    assert items[1] == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [],
        "encrypted_content": "enc",
    }
    assert items[2] == {"type": "message", "role": "assistant", "content": "Checking.",
                        "id": "msg_1", "phase": "commentary"}  # fmt: skip
    assert (items[3]["id"], items[3]["call_id"]) == ("fc_1", "call_a")


@pytest.mark.anyio
async def test_chained_turns_send_only_what_is_new() -> None:
    from agentstream import Agent, tool

    @tool
    def look(q: str) -> str:
        """Look."""
        return "seen"

    model = ScriptedModel([Reply(chunks=_turn()), Reply("Done.")])
    agent = Agent(
        client=model.async_client(), model="m", api="responses", tools=[look],
        chain_responses=True,
    )  # fmt: skip
    await agent.run("go")
    body = model.requests[1].body
    assert body["previous_response_id"] == "resp_1"
    assert [item["type"] for item in body["input"]] == ["function_call_output"]
