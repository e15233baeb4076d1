"""Agents as tools on the web: the inner run as `data-subrun` parts (nested cards), kept
through a replay, assembled by the real `ai` package, and drawn by the page in Chromium
inside the agent call's card, nested again one level deeper, through a reload."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import httpx2

from agentstream import Agent, SubRunEvent, ToolStarted, tool
from agentstream.testing import Reply, ScriptedModel, ToolCall
from agentstream.web import RunRegistry, UIStreamEncoder, create_app
from agentstream.web._nested import OUTPUT_LIMIT, TEXT_LIMIT

from ._web import parse_sse, running_server, ui_chat_body
from .test_web_ai_sdk import ai_package as ai_package
from .test_web_ai_sdk import read_with_ai_package
from .test_web_browser import WAIT, ask, shot

# The browser fixtures of the page tests, reused here.
from .test_web_browser import browser as browser
from .test_web_browser import page as page

HOSTILE = 'Digging <img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'


def three_levels(
    lookup_tool: Any, *, inner_text: str = HOSTILE, answers: int = 1
) -> tuple[Agent, list[ScriptedModel]]:
    """boss -> office (an agent) -> researcher (an agent) -> lookup (a plain tool)."""
    researcher_model = ScriptedModel(
        [
            Reply(inner_text, tool_calls=[ToolCall("lookup", {"q": "X"}, id="r1")]),
            Reply("X is 42."),
        ]
    )
    office_model = ScriptedModel(
        [
            Reply(
                "Asking research.", tool_calls=[ToolCall("researcher", {"input": "X?"}, id="f1")]
            ),
            Reply("Research says 42."),
        ]
    )
    boss_model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("office", {"input": "find X"}, id="b1")])]
        + [Reply("The answer is 42.")] * answers
    )
    researcher = Agent(client=researcher_model.async_client, model="r", tools=[lookup_tool])
    office = Agent(
        client=office_model.async_client, model="o", tools=[researcher.as_tool("researcher")]
    )
    boss = Agent(client=boss_model.async_client, model="b", tools=[office.as_tool("office")])
    return boss, [boss_model, office_model, researcher_model]


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"{q} is 42 " + "!" * (2 * OUTPUT_LIMIT)


async def test_the_inner_runs_become_bounded_nested_parts(anyio_backend: object) -> None:
    long_text = "x" * (TEXT_LIMIT + 500)
    boss, _ = three_levels(lookup, inner_text=long_text)
    encoder = UIStreamEncoder("m")
    parts: list[dict[str, Any]] = []
    async with boss.stream("go") as run:
        async for event in run:
            parts.extend(encoder.feed(event))
    nested = [p for p in parts if p["type"] == "data-subrun"]
    texts = [
        (p["data"]["parent"], p["data"]["text"]) for p in nested if p["data"]["kind"] == "text"
    ]
    # Each stretch of text once, whole, in the container of the run that wrote it.
    assert texts == [
        ("b1", "Asking research."),
        ("b1/f1", long_text[: TEXT_LIMIT - 1] + "…"),
        ("b1/f1", "X is 42."),
        ("b1", "Research says 42."),
    ]
    cards = [p for p in nested if p["data"]["kind"] == "tool"]
    # One id per inner call, sent again as it changes: running, then its end.
    assert [(p["id"], p["data"]["state"]) for p in cards] == [
        ("sub-m-b1/f1", "running"),
        ("sub-m-b1/f1/r1", "running"),
        ("sub-m-b1/f1/r1", "done"),
        ("sub-m-b1/f1", "done"),
    ]
    assert {p["data"]["toolCallId"] for p in nested} == {"b1"}
    deepest = cards[2]["data"]
    assert (deepest["parent"], deepest["key"], deepest["name"]) == ("b1/f1", "b1/f1/r1", "lookup")
    assert deepest["input"] == '{"q": "X"}'
    assert len(deepest["output"]) == OUTPUT_LIMIT
    assert all("transient" not in p for p in nested)
    # The live text pieces name the stretch their text belongs to.
    live = [p["data"] for p in parts if p.get("data", {}).get("kind") == "sub_run"]
    pieces = [d for d in live if d["event"]["type"] == "text_delta"]
    stretch = next(p["id"] for p in nested if p["data"].get("parent") == "b1/f1")  # 2 down
    assert "".join(d["event"]["text"] for d in pieces if d["part"] == stretch) == long_text


async def test_an_agent_call_cancelled_marks_its_inner_calls_cancelled(
    anyio_backend: object,
) -> None:
    @tool
    async def lookup(q: str) -> str:
        """Look something up, forever."""
        await anyio.sleep_forever()
        return "never"

    boss, _ = three_levels(lookup)
    encoder = UIStreamEncoder("m")
    parts: list[dict[str, Any]] = []
    with anyio.fail_after(20):
        async with boss.stream("go") as run:
            async for event in run:
                parts.extend(encoder.feed(event))
                inner = event.event if isinstance(event, SubRunEvent) else None
                if isinstance(inner, ToolStarted) and inner.name == "lookup":
                    run.cancel_call("b1", "enough")
    cards: dict[str, str] = {}
    for part in parts:
        if part["type"] == "data-subrun" and part["data"]["kind"] == "tool":
            cards[part["data"]["key"]] = part["data"]["state"]  # as a client keeps them
    assert cards == {"b1/f1": "cancelled", "b1/f1/r1": "cancelled"}
    kinds = [p["type"] for p in parts]
    assert kinds.index("data-tool-cancelled") > max(
        i for i, p in enumerate(parts) if p["type"] == "data-subrun"
    )
    assert run.result.output == "The answer is 42."


def test_a_reader_that_reattaches_gets_the_inner_text_once_joined_and_whole() -> None:
    boss, models = three_levels(lookup)
    app = create_app(boss)
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        live = http.post("/api/chat", json=ui_chat_body("go", "nest")).text
        again = http.get("/api/chat/nest/stream").text
    chunks = [f.json() for f in parse_sse(again) if f.data and f.data.startswith("{")]
    pieces = [
        c["data"] for c in chunks
        if c["type"] == "data-agentstream" and c["data"].get("kind") == "sub_run"
        and c["data"]["event"]["type"] == "text_delta"
    ]  # fmt: skip
    # The settled stretches' pieces were joined into one frame each.
    assert [d["event"]["text"] for d in pieces] == [
        "Asking research.",
        HOSTILE,
        "X is 42.",
        "Research says 42.",
    ]
    live_parts = [f.json() for f in parse_sse(live) if f.data and f.data.startswith("{")]
    kept = [c for c in chunks if c["type"] == "data-subrun"]
    assert kept == [c for c in live_parts if c["type"] == "data-subrun"]
    assert len(models[2].requests) == 2  # replayed, not run again


def test_the_json_events_replay_joins_the_inner_text_too() -> None:
    boss, _ = three_levels(lookup)
    with running_server(create_app(boss)) as url, httpx2.Client(base_url=url, timeout=20) as http:
        live = http.post("/api/events", json={"prompt": "go"})
        again = http.get(f"/api/events/{live.headers['x-agentstream-run']}")

    def inner_texts(body: str) -> list[tuple[str, str]]:
        events = [f.json() for f in parse_sse(body) if f.data]
        return [
            ("/".join(e["call_ids"]), e["event"]["text"]) for e in events
            if e["type"] == "sub_run_event" and e["event"]["type"] == "text_delta"
        ]  # fmt: skip

    pieces, joined = inner_texts(live.text), inner_texts(again.text)
    assert len(pieces) > len(joined)
    assert joined == [
        ("b1", "Asking research."), ("b1/f1", HOSTILE), ("b1/f1", "X is 42."),
        ("b1", "Research says 42."),
    ]  # fmt: skip


def test_the_ai_package_keeps_the_nested_parts_and_sends_them_back(ai_package: Path) -> None:
    boss, models = three_levels(lookup, answers=2)
    with running_server(create_app(boss)) as url:
        read = read_with_ai_package(ai_package, url, "Find X")
    assert read["errors"] == [], f"the ai package refused our parts: {read['errors']}"
    message = read["first"]["message"]
    nested = [p for p in message["parts"] if p["type"] == "data-subrun"]
    # Updated in place: one part per inner call, in its final state, and each stretch.
    cards = {p["data"]["key"]: p["data"]["state"] for p in nested if p["data"]["kind"] == "tool"}
    assert cards == {"b1/f1": "done", "b1/f1/r1": "done"}
    assert len([p for p in nested if p["data"]["kind"] == "text"]) == 4
    assert read["resumed"]["message"]["parts"] == message["parts"]
    # The next turn carried them back; the server read the conversation as before.
    assert read["second"]["types"][-1] == "finish:stop"
    history = models[0].requests[-1].body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]


def test_the_page_draws_the_inner_runs_inside_the_agent_card_through_a_reload(page: Any) -> None:
    release = threading.Event()

    @tool
    def lookup(q: str) -> str:
        """Look something up, slowly."""
        release.wait(60)
        return f"{q} is 42"

    boss, models = three_levels(lookup)
    app = create_app(boss, registry=RunRegistry(reattach_grace=30))
    try:
        with running_server(app) as url:
            page.goto(url + "/")
            ask(page, "Find X")
            outer = page.locator(".message.assistant .step > .tool")
            deepest = ".tool .subrun .tool.nested .subrun .tool.nested"
            page.wait_for_selector(deepest + ".running", timeout=WAIT)
            shot(page, "nested-1-running")
            for when in ("live", "reloaded"):
                assert outer.count() == 1, when
                assert outer.locator(".subrun-text").first.inner_text() == "Asking research."
                office = outer.locator(".subrun .tool.nested").first
                assert office.locator(":scope > .name").inner_text() == "researcher"
                inner_text = office.locator(".subrun-text").first.inner_text()
                assert inner_text == HOSTILE  # the model's markup shown as text
                assert page.locator(deepest + " > .name").inner_text() == "lookup"
                if when == "live":
                    page.reload()
                    page.wait_for_selector(deepest + ".running", timeout=WAIT)
            release.set()
            page.wait_for_selector(".run-metrics", timeout=WAIT)
            shot(page, "nested-2-finished")
            assert page.locator(deepest + ".done > .result").inner_text() == "X is 42"
            texts = outer.locator(".subrun-text").all_inner_texts()
            assert texts == ["Asking research.", HOSTILE, "X is 42.", "Research says 42."]
            assert outer.locator(":scope > .result").inner_text() == "Research says 42."
            assert page.locator("#messages img, #messages script").count() == 0
            assert page.evaluate("window.__pwned") is None
            # After the run, a reload redraws the answer from the kept history.
            page.reload()
            page.wait_for_selector(deepest + ".done", timeout=WAIT)
            assert outer.locator(".subrun-text").all_inner_texts() == texts
    finally:
        release.set()
    assert len(models[2].requests) == 2  # reattached, never asked again
