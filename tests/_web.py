"""Helpers for the web tests: a real uvicorn server on a free loopback port, SSE parsing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp


@contextmanager
def running_server(app: ASGIApp) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread; yield its base URL; stop it afterwards."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@dataclass(frozen=True)
class Frame:
    """One SSE event: its `id:` (or None) and its `data:` (or None for a comment)."""

    id: int | None
    data: str | None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


def parse_sse(text: str) -> list[Frame]:
    """The events of an SSE body; comments (keep-alives) are frames without data."""
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event_id: int | None = None
        data: str | None = None
        for line in block.split("\n"):
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data = line[5:].strip()
        frames.append(Frame(event_id, data))
    return frames


def ui_text(body: str) -> str:
    """The text a UI message stream shows: its text deltas joined (read live, a part
    comes in pieces; replayed after it settled, in one)."""
    return "".join(
        frame.json()["delta"]
        for frame in parse_sse(body)
        if frame.data and frame.data.startswith('{"type":"text-delta"')
    )


def ui_chat_body(text: str, chat_id: str = "chat-1") -> dict[str, Any]:
    """What `useChat` posts for a first user message."""
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}
    return {"id": chat_id, "messages": [message], "trigger": "submit-message"}
