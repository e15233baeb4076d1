"""Small helpers shared by the loop's tests."""

from __future__ import annotations

from typing import Any

import anyio

from agentstream import Agent, Retries, tool
from agentstream.testing import ScriptedModel

NO_RETRIES = Retries(max_retries=0)
"""For tests of how one failure is reported, before any retry could hide it."""


class Recorder:
    """A tool named `act` that counts its calls, for checking that a call never ran."""

    def __init__(self) -> None:
        self.calls = 0

        @tool
        def act() -> str:
            """Act."""
            self.calls += 1
            return "ok"

        self.tool = act

    @property
    def ran(self) -> bool:
        """Whether the tool ran at least once."""
        return self.calls > 0


async def run_events(model: ScriptedModel, *tools: Any, **options: Any) -> tuple[list[Any], Any]:
    """Run an agent on `model` with `tools` and `options`; its events and the run."""
    agent = Agent(client=model.async_client(), model="m", tools=tools, **options)
    events: list[Any] = []
    with anyio.fail_after(20):  # a loop that never ends must fail the test, not hang it
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    return events, run


def of(events: list[Any], kind: type) -> list[Any]:
    """The events of one kind."""
    return [event for event in events if isinstance(event, kind)]
