"""Round trips on the wire: what the request after a streamed turn carries back.

Every recorded case runs end to end through the command line against a scripted model
on loopback that serves the recorded chunks verbatim; the request that follows must carry
each `must_carry` path with its expected value, and none of the `must_not_carry` paths.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentstream import Agent, RunState, StreamAssembler, StreamError, Tool
from agentstream.loop._calls import assistant_message
from agentstream.testing import Reply, ScriptedModel

from ._roundtrip import CASES, Missing, case_params, replay_through_cli, resolve, served_lines


def check_case(case: dict[str, Any], body: dict[str, Any]) -> None:
    """Each must_carry path has its expected value; each must_not_carry path is absent."""
    api = case["api"]
    choices = case.get("expected_any", {})
    for path in case["must_carry"]:
        try:
            value = resolve(body, path, api)
        except Missing:
            pytest.fail(f"{path} is missing from the request")
        if path in choices:
            assert value in choices[path], path
        else:
            assert value == case["expected"][path], path
    for path in case["must_not_carry"]:
        with pytest.raises(Missing):
            resolve(body, path, api)


@pytest.mark.parametrize("name", case_params("chat"))
def test_chat_case_round_trips_through_the_cli(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    bodies = replay_through_cli(case, tmp_path)
    check_case(case, bodies[case["run"]["check_request"]])


def test_deepseek_reasoning_goes_back_after_a_new_user_turn(tmp_path: Path) -> None:
    # DeepSeek: the reasoning of an assistant message that called a tool goes back in
    # every later request, later user turns included (here a second CLI invocation on
    # the same session).
    case = CASES["deepseek__chatlas-v4flash-tool-reasoning_content"]
    bodies = replay_through_cli(case, tmp_path, [case["run"]["prompts"][0], "And tomorrow?"])
    later = bodies[2]
    assert [m["role"] for m in later["messages"]][-1] == "user"
    assert later["messages"][-1]["content"] == "And tomorrow?"
    check_case(case, later)
    # The plain answer of the first turn streamed no reasoning: none is invented for it.
    answer = [m for m in later["messages"] if m["role"] == "assistant"][1]
    assert answer["content"] == "All done."
    assert "reasoning_content" not in answer


def test_path_syntax() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "a": {"b": [1, {"type": "x", "v": 2}]}},
            {"role": "assistant", "c": 3},
        ]
    }
    assert resolve(body, "a.b[0]") == 1
    assert resolve(body, "a.b[type=x].v") == 2
    assert resolve(body, "assistant[1].c") == 3
    for path in ("a.c", "a.b[2]", "a.b[type=y]", "assistant[2].c", "c"):
        with pytest.raises(Missing):
            resolve(body, path)


# --- the assembler's wire-exact record ------------------------------------------------------


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({cut % (len(text) + 1) for cut in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)] or [text]


def _assembled(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.feed(chunk)
    return assistant_message(assembler.finish().message)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@settings(max_examples=60, deadline=None)
@given(
    own=st.text(min_size=1),
    plain=st.text(min_size=1),
    summary=st.text(min_size=1),
    data=st.text(min_size=1),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_any_cutting_gives_the_same_wire_message(
    own: str, plain: str, summary: str, data: str, cuts: list[int]
) -> None:
    """However the server cuts its deltas, the message that goes back is the same."""
    chunks = [_chunk({"role": "assistant"})]
    chunks += [_chunk({"reasoning_content": piece}) for piece in _pieces(own, cuts)]
    chunks += [_chunk({"reasoning": piece}) for piece in _pieces(plain, cuts[::-1])]
    chunks += [
        _chunk({"reasoning_details": [{"type": "reasoning.summary", "index": 0, "summary": p}]})
        for p in _pieces(summary, cuts)
    ]
    call = {"index": 0, "id": "call_x", "type": "function", "function": {"name": "f"}}
    extra = {"google": {"thought_signature": "sig"}}
    chunks.append(_chunk({"tool_calls": [{**call, "extra_content": extra}]}))
    chunks.append(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
    # Blocks that arrive after the tool call are kept, in first-seen order.
    chunks += [
        _chunk({"reasoning_details": [{"type": "reasoning.encrypted", "index": 1, "data": p}]})
        for p in _pieces(data, cuts)
    ]
    chunks.append(_chunk({}, "tool_calls"))
    message = _assembled(chunks)
    assert message["reasoning_content"] == own
    assert message["reasoning"] == plain
    assert message["reasoning_details"] == [
        {"type": "reasoning.summary", "index": 0, "summary": summary},
        {"type": "reasoning.encrypted", "index": 1, "data": data},
    ]
    assert message["tool_calls"][0]["extra_content"] == extra
    assert message["tool_calls"][0]["id"] == "call_x"


def test_reasoning_details_merge_by_index_and_type() -> None:
    """text concatenated; other keys from their first non-empty value (a signature
    arriving in the last fragment); a new type at the same index is its own block."""

    def block(**fields: Any) -> dict[str, Any]:
        return _chunk({"reasoning_details": [fields]})

    message = _assembled([
        block(type="reasoning.text", index=0, text="Think", signature="", format="claude"),
        block(type="reasoning.text", index=0, text="ing.", signature=""),
        block(type="reasoning.text", index=0, text="", signature="SIG"),
        block(type="reasoning.encrypted", index=0, data="AB", id="rs_1"),
        block(type="reasoning.encrypted", index=0, data="CD", id="rs_2"),
        _chunk({"content": "done"}, "stop"),
    ])  # fmt: skip
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "index": 0, "text": "Thinking.", "signature": "SIG",
         "format": "claude"},
        {"type": "reasoning.encrypted", "index": 0, "data": "ABCD", "id": "rs_1"},
    ]  # fmt: skip


def test_nothing_is_added_or_renamed() -> None:
    """A stream without reasoning sends none back; `reasoning` stays `reasoning`; per-chunk
    tags and response metadata (Groq's `channel`, a gateway's `provider_metadata`) stay out;
    an unknown message key (Gemini's `extra_content` on text) goes back."""
    plain = _assembled([_chunk({"role": "assistant", "content": "hi", "refusal": None}, "stop")])
    assert plain == {"role": "assistant", "content": "hi"}
    message = _assembled([
        _chunk({"role": "assistant", "reasoning": "hm", "channel": "analysis"}),
        _chunk({"reasoning": "", "reasoning_content": None, "provider_metadata": {"u": 1}}),
        _chunk({"content": "x", "extra_content": {"google": {"thought_signature": "s"}}}, "stop"),
    ])  # fmt: skip
    assert message == {
        "role": "assistant",
        "content": "x",
        "reasoning": "hm",
        "extra_content": {"google": {"thought_signature": "s"}},
    }


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "delta",
    [
        pytest.param({"extra_content": _deep(5000)}, id="deep-message-extra"),
        pytest.param({f"k{n}": n for n in range(100)}, id="many-message-keys"),
        pytest.param(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}, "x": _deep(5000)}]},
            id="deep-call-extra",
        ),
        pytest.param(
            {"reasoning_details": [{"type": "t", "index": n, "text": "a"} for n in range(300)]},
            id="many-blocks",
        ),
        pytest.param({"reasoning_details": [{"type": "t", "index": [1]}]}, id="bad-block-index"),
        pytest.param({"reasoning_details": ["text"]}, id="block-not-object"),
    ],
)
def test_hostile_extras_get_a_stream_error(delta: dict[str, Any]) -> None:
    assembler = StreamAssembler()
    with pytest.raises(StreamError, match="malformed chunk"):
        assembler.feed(_chunk(delta))


# --- persistence: save after step 1, resume from JSON ----------------------------------------


@pytest.mark.anyio
async def test_resumed_run_still_sends_the_fields() -> None:
    case = CASES["gemini__docs-openai-compat-thought-signature"]
    stream = [json.loads(line) for line in served_lines(case["file"])]
    stream[0]["choices"][0]["delta"]["reasoning_content"] = "Let me check."
    model = ScriptedModel([Reply(chunks=stream), Reply("On time.")])
    flight = Tool.from_schema(
        "check_flight", {"type": "object"}, lambda arguments: "ok", needs_approval=True
    )
    async with model.async_client() as client:
        agent = Agent(client=client, model="m", tools=[flight])
        paused = await agent.run("Check flight status for AA100.")
        assert paused.stop_reason == "approval_required"
        assert paused.state is not None
        saved = paused.state.to_json()
        again = Agent(client=client, model="m", tools=[flight])
        result = await again.resume(RunState.from_json(saved), approvals={"function-call-1": True})
    assert result.stop_reason == "answer"
    body = model.requests[1].body
    assert isinstance(body, dict)
    assistant = resolve(body, "tool_calls[0]")
    assert assistant["extra_content"] == {"google": {"thought_signature": "<Signature A>"}}
    assert assistant["id"] == "function-call-1"
    assert resolve(body, "reasoning_content") == "Let me check."
    assert json.loads(saved)["pending"]["assistant"]["reasoning_content"] == "Let me check."


# --- the web adapter: the page sends back text and tool parts only -----------------------------


@pytest.mark.parametrize(
    "restart", [pytest.param(False, id="same-app"), pytest.param(True, id="restart-with-store")]
)
def test_web_chat_keeps_reasoning_across_turns(restart: bool) -> None:
    """The page cannot carry DeepSeek's reasoning back; the server restores it from what it
    kept (in memory, or in its store after a restart) on the chat's next turn."""
    import httpx2

    from agentstream.stores import MemoryStore
    from agentstream.web import create_app

    from ._web import running_server, ui_chat_body

    case = CASES["deepseek__chatlas-v4flash-tool-reasoning_content"]
    prompt = case["run"]["prompts"][0]
    model = ScriptedModel(
        [Reply(chunks=served_lines(case["file"])), Reply("Done."), Reply("Same date.")]
    )
    date = Tool.from_schema("get_date", {"type": "object"}, lambda arguments: "2024-01-01")
    store = MemoryStore()

    def app() -> Any:
        return create_app(Agent(client=model.async_client, model="m", tools=[date]), store=store)

    first = app()
    with running_server(first) as url, httpx2.Client(base_url=url) as http:
        assert http.post("/api/chat", json=ui_chat_body(prompt, "chat-rt")).status_code == 200
    call_id = case["expected"]["tool_calls[0].id"]
    body = {
        "id": "chat-rt",
        "messages": [
            {"id": "u1", "role": "user", "parts": [{"type": "text", "text": prompt}]},
            {"id": "a1", "role": "assistant", "parts": [
                {"type": "step-start"},
                {"type": "tool-get_date", "toolCallId": call_id, "state": "output-available",
                 "input": {}, "output": "2024-01-01"},
                {"type": "step-start"},
                {"type": "text", "text": "Done.", "state": "done"},
            ]},
            {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "And tomorrow?"}]},
        ],
    }  # fmt: skip
    with running_server(app() if restart else first) as url, httpx2.Client(base_url=url) as http:
        assert http.post("/api/chat", json=body).status_code == 200
    later = model.requests[2].body
    assert isinstance(later, dict)
    assert later["messages"][-1] == {"role": "user", "content": "And tomorrow?"}
    check_case(case, later)
