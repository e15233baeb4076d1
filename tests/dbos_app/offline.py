"""A DurableAgent on the offline model, in a child process of tests/test_dbos_offline.py.

    python tests/dbos_app/offline.py DB_URL (transport | network)

`transport` runs one durable run through the offline model's in-process transport and
prints its output; `network` tries to make the DurableAgent without it and prints the
SetupError it must raise at once.
"""

from __future__ import annotations

import asyncio
import sys

from dbos import DBOS

from agentstream import Agent, SetupError, tool
from agentstream.dbos import DurableAgent
from agentstream.testing import OFFLINE_MODEL_NAME, offline_model

DB_URL, MODE = sys.argv[1:3]


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"sunny, 21 °C in {location}"


model = offline_model()
agent = Agent(client=model.async_client, model=OFFLINE_MODEL_NAME, tools=[get_weather])
if MODE == "network":
    try:
        DurableAgent(agent, name="offline")
    except SetupError as exc:
        print(f"refused: {exc}")
    sys.exit(0)

durable = DurableAgent(agent, name="offline", transport=model.async_transport())
DBOS(config={"name": "agentstream-offline", "system_database_url": DB_URL})


async def main() -> None:
    DBOS.launch()
    try:
        result = await durable.run("What's the weather in Paris?", workflow_id="w-1")
        again = await durable.run("What's the weather in Paris?", workflow_id="w-1")
        print(result.stop_reason)
        print(result.output)
        print("same" if again == result else "differs")
    finally:
        DBOS.destroy()


asyncio.run(main())
