"""A DurableAgent replaying a round-trip case, in a child process of tests/test_dbos_roundtrip.py.

    python tests/dbos_app/roundtrip.py DB_URL CASE_FILE...

Serves each recorded stream verbatim from a scripted model (in-process transport), then a
plain answer; runs one durable run, then the same workflow id again, and prints the body
of every request the model received as one JSON line (`request {...}`), then `same` when
the second call returned the recorded result without asking the model again.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from dbos import DBOS

from agentstream import Agent, tool
from agentstream.dbos import DurableAgent
from agentstream.testing import Reply, ScriptedModel

DB_URL, *FILES = sys.argv[1:]


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city.
    """
    return f"sunny in {location}"


replies = [
    Reply(chunks=[line for line in Path(f).read_text().splitlines() if line.strip()]) for f in FILES
]
model = ScriptedModel([*replies, Reply("All done.")])
agent = Agent(client=model.async_client(), model="m", tools=[get_weather])
durable = DurableAgent(agent, name="roundtrip", transport=model.async_transport())
DBOS(config={"name": "agentstream-roundtrip", "system_database_url": DB_URL})


async def main() -> None:
    DBOS.launch()
    try:
        result = await durable.run("What is the weather?", workflow_id="rt-1")
        asked = len(model.requests)
        again = await durable.run("What is the weather?", workflow_id="rt-1")
        for request in model.requests:
            print("request " + json.dumps(request.body))
        print("same" if again == result and len(model.requests) == asked else "differs")
    finally:
        DBOS.destroy()


asyncio.run(main())
