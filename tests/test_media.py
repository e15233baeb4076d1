"""Images and files from tools: the public types, each wire's shape, limits, refusals.

End to end through the real openai client over real SSE from the scripted model, on
both wires; the request bodies the scripted model recorded show what the model got.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

from agentstream import (
    Agent,
    Event,
    File,
    Image,
    MediaRefused,
    RetriesExhausted,
    RunState,
    Session,
    SetupError,
    StateError,
    ToolFinished,
    tool,
)
from agentstream.cli._render import JsonRenderer, Renderer
from agentstream.stores import MemoryStore
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall
from agentstream.tools._media import result_parts, tool_output
from agentstream.wire._media import chat_media, refused_media, responses_output

LIMIT = 30  # seconds; a hang must fail the test, not stall the suite (never a timing check)
Api = Literal["chat", "responses"]
APIS = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (grey pixels), so a browser can draw it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png()
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
PDF = b"%PDF-1.4\n%fake but small\n"
PDF_URL = "data:application/pdf;base64," + base64.b64encode(PDF).decode()


# --- the public types --------------------------------------------------------------------


def test_image_and_file_values(tmp_path: Path) -> None:
    image = Image(PNG, "image/png")
    assert image.data_url == PNG_URL
    assert repr(image) == f"Image(image/png, {len(PNG)} bytes)"
    assert image == Image(bytearray(PNG), "IMAGE/PNG")  # media types are case-blind
    assert image != Image(PNG, "image/webp")
    path = tmp_path / "chart.png"
    path.write_bytes(PNG)
    assert Image.from_path(path) == image
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(PDF)
    file = File.from_path(pdf)
    assert (file.name, file.media_type, file.data) == ("report.pdf", "application/pdf", PDF)
    assert file.data_url == PDF_URL
    assert File(PDF, "application/pdf", "../a/b\nc.pdf").name == ".._a_b_c.pdf"
    assert File(PDF, "application/pdf", "half\ud83d.pdf").name == "half\ufffd.pdf"
    assert pickle.loads(pickle.dumps(file)) == file  # durable steps keep results so


def test_an_image_nested_in_other_data_is_named_only() -> None:
    text, media = tool_output({"chart": Image(PNG)}, None)
    assert (text, media) == (f'{{"chart":"Image(image/png, {len(PNG)} bytes)"}}', ())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda: Image(PNG, "text/plain"), "image/\\* media type", id="not-image"),
        pytest.param(lambda: Image(PNG, "png"), "not a media type", id="no-slash"),
        pytest.param(lambda: File(PDF, "application/pdf;x=1"), "not a media type", id="params"),
        pytest.param(
            lambda: Image("text", "image/png"),  # type: ignore[arg-type]
            "must be bytes",
            id="str-data",
        ),
        pytest.param(
            lambda: Image.from_path("/secret/folder/x.png"), r"^cannot read 'x.png'", id="missing"
        ),
        pytest.param(lambda: File.from_path("/tmp/no-suffix"), "media type", id="unguessable"),
    ],
)
def test_bad_values_are_setup_errors(make: Any, match: str) -> None:
    with pytest.raises(SetupError, match=match):
        make()


def test_result_parts_notes_and_limit() -> None:
    assert result_parts("text", None) is None
    assert result_parts([1, "two"], None) is None
    text, media = result_parts(["a chart", Image(PNG), {"n": 1}], None)  # type: ignore[misc]
    assert text == f'a chart\n[image: image/png, {len(PNG)} bytes]\n{{"n":1}}'
    assert media == (Image(PNG),)
    big = Image(bytes(20_000), "image/jpeg")
    text, media = result_parts((big, File(PDF, "application/pdf", "r.pdf")), 10_000)  # type: ignore[misc]
    assert media == (File(PDF, "application/pdf", "r.pdf"),)
    assert text.splitlines() == [
        "[image: image/jpeg, 20.0 kB, not sent: over the limit of 10.0 kB per image or file]",
        f"[file r.pdf: application/pdf, {len(PDF)} bytes]",
    ]


# --- the wires, without I/O ---------------------------------------------------------------

CONTENT = [
    {"type": "text", "text": "a chart"},
    {"type": "image_url", "image_url": {"url": PNG_URL}},
    {"type": "file", "file": {"file_data": PDF_URL, "filename": "r.pdf"}},
]


def test_chat_media_moves_parts_after_the_tool_messages() -> None:
    calls = [
        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in "ab"
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "a", "content": CONTENT},
        {"role": "tool", "tool_call_id": "b", "content": "plain"},
        {"role": "assistant", "content": "done"},
    ]
    sent = chat_media(messages)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user", "assistant"]
    assert sent[2] == {"role": "tool", "tool_call_id": "a", "content": "a chart"}
    assert sent[4]["content"] == [
        {"type": "text", "text": "Attached to the result of call a:"},
        *CONTENT[1:],
    ]
    assert messages[2]["content"] == CONTENT  # the conversation itself is untouched
    text_only = [*messages[:2], {"role": "tool", "tool_call_id": "a", "content": "x"}]
    assert chat_media(text_only) is text_only  # nothing to move: the same list


def test_responses_output_parts() -> None:
    assert responses_output("plain") is None
    assert responses_output([{"type": "text", "text": "x"}]) is None
    assert responses_output(CONTENT) == [
        {"type": "input_text", "text": "a chart"},
        {"type": "input_image", "image_url": PNG_URL, "detail": "auto"},
        {"type": "input_file", "file_data": PDF_URL, "filename": "r.pdf"},
    ]


# --- end to end -------------------------------------------------------------------------


@tool
def chart(month: str) -> list[Any]:
    """Draw the sales chart of a month."""
    return [f"sales for {month}", Image(PNG), File(PDF, "application/pdf", "sales.pdf")]


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def run_all(agent: Agent[Any], prompt: str = "go") -> tuple[list[Event], Any]:
    events: list[Event] = []
    with anyio.fail_after(LIMIT):
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    return events, run.result


def script(*calls: ToolCall) -> ScriptedModel:
    return ScriptedModel([Reply(tool_calls=list(calls)), Reply("Sales rose.")])


def check_sent(body: dict[str, Any], api: str, call_id: str, text: str, parts: list[Any]) -> None:
    """The second request holds the call's text and its images/files in the wire's shape."""
    if api == "chat":
        messages = body["messages"]
        at = next(i for i, m in enumerate(messages) if m.get("tool_call_id") == call_id)
        assert messages[at]["content"] == text  # a tool message carries text only
        after = next(m for m in messages[at:] if m["role"] != "tool")
        assert after["role"] == "user"
        assert after["content"][0] == {
            "type": "text",
            "text": f"Attached to the result of call {call_id}:",
        }
        assert after["content"][1:] == parts
    else:
        (output,) = [
            item["output"]
            for item in body["input"]
            if item.get("type") == "function_call_output" and item["call_id"] == call_id
        ]
        shaped = responses_output([{"type": "text", "text": text}, *parts])
        assert output == shaped
        assert output[1]["type"] == "input_image"


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_local_tools_image_reaches_the_next_request(api: Api) -> None:
    model = script(
        ToolCall("chart", {"month": "May"}, id="c1"), ToolCall("weather", {"city": "Oslo"}, id="c2")
    )
    agent = Agent(client=model.async_client(), model="m", tools=[chart, weather], api=api)
    events, result = await run_all(agent)
    done = {e.id: e for e in events if isinstance(e, ToolFinished)}
    text = (
        f"sales for May\n[image: image/png, {len(PNG)} bytes]\n"
        f"[file sales.pdf: application/pdf, {len(PDF)} bytes]"
    )
    assert done["c1"].output == text
    assert done["c1"].media == (Image(PNG), File(PDF, "application/pdf", "sales.pdf"))
    assert done["c2"].media == ()
    assert result.output == "Sales rose."
    parts = [
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "file", "file": {"file_data": PDF_URL, "filename": "sales.pdf"}},
    ]
    body = model.requests[1].body
    check_sent(body, api, "c1", text, parts)
    if api == "chat":  # the text tool's message is as it always was
        plain = [m for m in body["messages"] if m.get("tool_call_id") == "c2"]
        assert plain == [{"role": "tool", "tool_call_id": "c2", "content": "sunny in Oslo"}]
    else:
        outputs = [i["output"] for i in body["input"] if i.get("call_id") == "c2" and "output" in i]
        assert outputs == ["sunny in Oslo"]
    # The state keeps them as plain JSON (base64 data URLs), and reads them back.
    state = RunState.from_json(result.state.to_json())
    (kept,) = [m for m in state.messages if m.get("tool_call_id") == "c1"]
    assert kept["content"] == [{"type": "text", "text": text}, *parts]


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_an_image_over_the_limit_is_not_sent(api: Api) -> None:
    model = script(ToolCall("chart", {"month": "May"}, id="c1"))
    agent = Agent(
        client=model.async_client(), model="m", tools=[chart], api=api, max_media_size=len(PDF)
    )
    events, _ = await run_all(agent)
    (done,) = [e for e in events if isinstance(e, ToolFinished)]
    assert done.media == (File(PDF, "application/pdf", "sales.pdf"),)  # the PDF fits
    assert f"[image: image/png, {len(PNG)} bytes, not sent: over the limit of" in done.output
    sent = str(model.requests[1].body)
    assert PNG_URL not in sent
    assert PDF_URL in sent


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_a_server_that_refuses_images_says_so(api: Api) -> None:
    refusal = "Invalid content type. image_url is only supported by certain models."
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("chart", {"month": "May"}, id="c1")]),
            Reply(fault=Fault(status=400, message=refusal)),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[chart], api=api)
    with pytest.raises((MediaRefused, RetriesExhausted)) as caught:
        await run_all(agent)
    error = caught.value
    if isinstance(error, RetriesExhausted):
        error = error.errors[-1]
    assert isinstance(error, MediaRefused)
    assert error.status_code == 400
    assert "refused the images or files in the request" in error.message
    assert refusal in error.message


@pytest.mark.anyio
async def test_the_same_400_without_media_stays_a_model_error() -> None:
    from agentstream import ModelError

    model = ScriptedModel([Reply(fault=Fault(status=400, message="image_url is not supported"))])
    agent = Agent(client=model.async_client(), model="m", tools=[weather])
    with pytest.raises(ModelError) as caught:
        await run_all(agent)
    assert not isinstance(caught.value, MediaRefused)


def test_refused_media_needs_a_400_naming_them() -> None:
    from agentstream import ModelError

    body = {"messages": [{"role": "user", "content": CONTENT}]}
    other = ModelError("the server answered 400: temperature too high", status_code=400)
    assert refused_media(other, body) is other
    busy = ModelError("the server answered 503: image service down", status_code=503)
    assert refused_media(busy, body) is busy
    named = ModelError("the server answered 400: model is not multimodal", status_code=400)
    assert isinstance(refused_media(named, body), MediaRefused)


# --- how the command line shows them ------------------------------------------------------


def finished_with_media(output: str, *media: Any) -> ToolFinished:
    return ToolFinished(1, 0, "c1", "chart", output, list(media), None, 0.01, media=media)


@pytest.mark.parametrize(
    "terminal", [pytest.param(False, id="plain"), pytest.param(True, id="tty")]
)
def test_the_cli_shows_an_image_as_a_one_line_note(terminal: bool) -> None:
    out = io.StringIO()
    renderer = Renderer(out, terminal=terminal, width=80, unicode=False)
    text = "x" * 300 + f"\n[image: image/png, {len(PNG)} bytes]"
    renderer.handle(finished_with_media(text, Image(PNG)))
    renderer.finish()
    shown = out.getvalue()
    assert f"[image: image/png, {len(PNG)} bytes] xxx" in shown  # first, so never clipped
    assert base64.b64encode(PNG).decode()[:20] not in shown
    assert len([line for line in shown.splitlines() if "chart" in line]) == 1


def test_json_events_name_the_media_without_their_bytes() -> None:
    out = io.StringIO()
    JsonRenderer(out).handle(
        finished_with_media("[image]", Image(PNG), File(PDF, "application/pdf"))
    )
    data = json.loads(out.getvalue())
    assert data["media"] == [
        f"Image(image/png, {len(PNG)} bytes)",
        f"File(application/pdf, {len(PDF)} bytes)",
    ]
    assert base64.b64encode(PNG).decode()[:20] not in out.getvalue()


@tool(early=True)
def early_chart(month: str) -> Image:
    """Draw the sales chart of a month, as soon as the call is complete."""
    return Image(PNG)


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_an_early_tools_image_reaches_the_next_request(api: Api) -> None:
    model = script(ToolCall("early_chart", {"month": "May"}, id="c1"))
    agent = Agent(
        client=model.async_client(), model="m", tools=[early_chart], api=api, early_tools=True
    )
    events, _ = await run_all(agent)
    (done,) = [e for e in events if isinstance(e, ToolFinished)]
    assert done.media == (Image(PNG),)
    parts = [{"type": "image_url", "image_url": {"url": PNG_URL}}]
    check_sent(model.requests[1].body, api, "c1", f"[image: image/png, {len(PNG)} bytes]", parts)


@tool(needs_approval=True)
def publish(month: str) -> str:
    """Publish the sales report of a month (a person approves it first)."""
    return f"published {month}"


@pytest.mark.anyio
@pytest.mark.parametrize("api", APIS)
async def test_an_image_survives_a_pause_for_approval(api: Api) -> None:
    model = script(
        ToolCall("chart", {"month": "May"}, id="c1"), ToolCall("publish", {"month": "May"}, id="c2")
    )
    agent = Agent(client=model.async_client(), model="m", tools=[chart, publish], api=api)
    with anyio.fail_after(LIMIT):
        paused = await agent.run("go")
        assert paused.stop_reason == "approval_required"
        assert paused.state is not None
        saved = paused.state.to_json()  # the chart ran; its image waits in the saved step
        assert PNG_URL in saved
        result = await agent.resume(saved, approvals={"c2": True})
    assert result.output == "Sales rose."
    text = (
        f"sales for May\n[image: image/png, {len(PNG)} bytes]\n"
        f"[file sales.pdf: application/pdf, {len(PDF)} bytes]"
    )
    parts = [
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "file", "file": {"file_data": PDF_URL, "filename": "sales.pdf"}},
    ]
    check_sent(model.requests[1].body, api, "c1", text, parts)


@pytest.mark.anyio
async def test_a_saved_call_with_bad_media_is_refused() -> None:
    model = script(
        ToolCall("chart", {"month": "May"}, id="c1"), ToolCall("publish", {"month": "May"}, id="c2")
    )
    agent = Agent(client=model.async_client(), model="m", tools=[chart, publish])
    with anyio.fail_after(LIMIT):
        paused = await agent.run("go")
    assert paused.state is not None
    data = json.loads(paused.state.to_json())
    (ran,) = [call for call in data["pending"]["calls"] if call["id"] == "c1"]
    assert [part["type"] for part in ran["media"]] == ["image_url", "file"]
    RunState.from_json(json.dumps(data))  # as saved, it reads back
    ran["media"] = ["not a part"]
    with pytest.raises(StateError, match="media that are not content parts"):
        RunState.from_json(json.dumps(data))


class RecordingStore(MemoryStore):
    """A memory store that keeps every document saved, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[str] = []

    async def save(self, key: str, document: str) -> None:
        self.saved.append(document)
        await super().save(key, document)

    async def swap(self, key: str, expected: str | None, document: str) -> bool:
        self.saved.append(document)
        return await super().swap(key, expected, document)


@pytest.mark.anyio
async def test_a_checkpoint_after_the_tool_keeps_its_image() -> None:
    """With a session, a crash after the tool finished resumes with its image, not a note."""
    model = script(
        ToolCall("chart", {"month": "May"}, id="c1"), ToolCall("weather", {"city": "Oslo"}, id="c2")
    )
    store = RecordingStore()
    agent = Agent(client=model.async_client(), model="m", tools=[chart, weather])
    with anyio.fail_after(LIMIT):
        await agent.run("go", session=Session(store, "s1"))
    mid_step = [
        call
        for document in store.saved
        for call in ((json.loads(document).get("pending") or {}).get("calls") or ())
        if call["id"] == "c1" and call["status"] == "finished"
    ]
    assert mid_step, "no checkpoint was saved after the chart finished"
    assert all(
        call["media"][0] == {"type": "image_url", "image_url": {"url": PNG_URL}}
        for call in mid_step
    )
