"""Typed answers in the web adapter's UI message stream: one `data-output` part per run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from agentstream import Agent, Event
from agentstream.testing import Reply, ScriptedModel
from agentstream.web import UIStreamEncoder

pytestmark = pytest.mark.anyio


class Booking(BaseModel):
    city: str
    nights: int


async def test_partial_invalid_and_final_values_update_one_data_part() -> None:
    model = ScriptedModel(
        [Reply('{"city": "Paris", "nights": "x"}'), Reply('{"city": "Paris", "nights": 3}')]
    )
    agent = Agent(client=model.async_client(), model="m", output_type=Booking)
    events: list[Event] = []
    async with agent.stream("book") as run:
        async for event in run:
            events.append(event)
    encoder = UIStreamEncoder("msg_1")
    chunks = [chunk for event in events for chunk in encoder.feed(event)]
    parts: list[dict[str, Any]] = [c for c in chunks if c["type"] == "data-output"]
    assert len({part["id"] for part in parts}) == 1
    statuses = [part["data"]["status"] for part in parts]
    assert statuses[-1] == "ready"
    assert "invalid" in statuses
    assert statuses.index("invalid") < len(statuses) - 1
    assert parts[-1]["data"]["value"] == {"city": "Paris", "nights": 3}
    invalid = parts[statuses.index("invalid")]["data"]
    assert "nights: Input should be a valid integer" in invalid["error"]
    streaming = [part["data"] for part in parts if part["data"]["status"] == "streaming"]
    assert streaming[-1]["partial"] == {"city": "Paris", "nights": 3}
    assert streaming[-1]["completed"] == ["city", "nights"]
    json.dumps(chunks)  # every part is JSON-ready
