"""A tool's images on the web: transient `data-tool-media` parts, drawn by the page as
`<img>` from data URLs (never as markup), read by the real `ai` package and Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentstream import Agent, File, Image, tool
from agentstream.testing import Reply, ScriptedModel, ToolCall
from agentstream.tools._media import media_content
from agentstream.web import create_app, to_ui

from ._web import running_server
from .test_media import PNG, png
from .test_web_ai_sdk import ai_package, read_with_ai_package  # noqa: F401 (a fixture)
from .test_web_browser import WAIT, ask, browser, page, shot  # noqa: F401 (fixtures)
from .test_web_protocol import check_protocol, encode, run_events

HOSTILE_NAME = '<img src=x onerror="window.pwned=1">.pdf'
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.pwned=1">'
    b"<script>window.pwned=1</script></svg>"
)


@tool
def chart(month: str) -> list[Any]:
    """Draw the sales chart of a month."""
    return [
        f"sales for {month}",
        Image(png(40, 20)),
        Image(SVG, "image/svg+xml"),
        File(b"%PDF-1.4", "application/pdf", HOSTILE_NAME),
    ]


def chart_agent(*more: Reply) -> tuple[Agent, ScriptedModel]:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("chart", {"month": "May"}, id="c1")]), Reply("Here."), *more]
    )
    return Agent(client=model.async_client, model="m", tools=[chart]), model


@pytest.mark.anyio
async def test_media_become_transient_data_parts_after_the_output() -> None:
    agent, _ = chart_agent()
    chunks = encode(await run_events(agent, "chart?"))
    check_protocol(chunks)
    kinds = [chunk["type"] for chunk in chunks]
    at = kinds.index("tool-output-available")
    assert kinds[at + 1 : at + 4] == ["data-tool-media"] * 3
    media = [chunk for chunk in chunks if chunk["type"] == "data-tool-media"]
    assert all(chunk["transient"] is True for chunk in media)
    call = chunks[at]["toolCallId"]
    assert media[0]["data"] == {
        "toolCallId": call,
        "mediaType": "image/png",
        "url": Image(png(40, 20)).data_url,
        "filename": None,
        "size": len(png(40, 20)),
    }
    assert media[2]["data"]["filename"] == HOSTILE_NAME
    assert "[image: image/png" in chunks[at]["output"]


@pytest.mark.anyio
async def test_text_results_have_no_media_parts() -> None:
    @tool
    def plain() -> str:
        """Say hi."""
        return "hi"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("plain", {})]), Reply("ok")])
    agent = Agent(client=model.async_client, model="m", tools=[plain])
    chunks = encode(await run_events(agent, "hi"))
    assert not [chunk for chunk in chunks if chunk["type"] == "data-tool-media"]


def test_the_ai_package_reads_media_parts_and_keeps_them_out_of_messages(
    ai_package: Path,  # noqa: F811
) -> None:
    agent, model = chart_agent(Reply("Sunny in Oslo."))
    with running_server(create_app(agent)) as url:
        result = read_with_ai_package(ai_package, url, "chart?")
    assert result["errors"] == []
    first = result["first"]
    assert first["types"].count("data-tool-media") == 3
    parts = first["message"]["parts"]
    assert not [part for part in parts if part["type"].startswith("data-tool-media")]
    # The next turn does not carry the images back (the model has them already).
    assert PNG[:8] not in model.requests[-1].content


def test_the_page_draws_an_image_and_never_markup(page: Any) -> None:  # noqa: F811
    agent, _ = chart_agent()
    with running_server(create_app(agent)) as url:
        page.goto(url + "/")
        ask(page, "The chart of May?")
        page.wait_for_selector(".tool img.media", timeout=WAIT)
        page.wait_for_selector(".step .text:not(:empty)", timeout=WAIT)
        page.wait_for_function(
            "[...document.querySelectorAll('img.media')].every(i => i.complete)", timeout=WAIT
        )
        shot(page, "media-1-chart")
        images = page.eval_on_selector_all(
            ".tool img",
            "imgs => imgs.map(i => [i.className, i.naturalWidth, i.src.slice(0, 22)])",
        )
        # The PNG is decoded (the page's CSP lets data: images in), the SVG drawn as an
        # image (its script never runs), and the file's name is text, not an element.
        assert len(images) == 2
        assert images[0] == ["media", 40, "data:image/png;base64,"]
        assert (images[1][0], images[1][2]) == ("media", "data:image/svg+xml;bas")
        named = page.text_content(".tool .media-file")
        assert named is not None
        assert HOSTILE_NAME in named
        assert page.evaluate("window.pwned") is None


def test_a_restored_conversation_shows_the_text_not_the_data() -> None:
    """Sync on purpose: the browser fixture of this module holds the main thread's loop."""
    text = f"sales for May\n[image: image/png, {len(PNG)} bytes]"
    call = {"id": "c1", "type": "function", "function": {"name": "chart", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "chart?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": media_content(text, (Image(PNG),))},
        {"role": "assistant", "content": "Here."},
    ]
    ui = to_ui(messages)
    (part,) = [p for m in ui for p in m["parts"] if p["type"] == "tool-chart"]
    assert part["output"] == text
    assert "base64" not in str(ui)
