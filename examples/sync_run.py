"""A plain synchronous program: `agent.run_sync(...)`, no async code of your own.

Run it with `python examples/sync_run.py`. Offline unless OPENAI_API_KEY or
OPENAI_BASE_URL is set (then OPENAI_MODEL picks the model, gpt-4o-mini by default).

Each `run_sync` call starts and ends its own event loop, and a client's connections
belong to the loop that opened them, so the agent gets a client *factory*
(`offline_model().async_client`, or `lambda: AsyncOpenAI()`): every run makes a fresh
client and closes it when it ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from openai import AsyncOpenAI

from agentstream import Agent, tool
from agentstream.testing import offline_model

QUESTIONS = ("What's the weather in Paris and Tokyo?", "Who wrote Les Misérables?")


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"Sunny and 21 °C in {location}"


def client_factory() -> Callable[[], AsyncOpenAI]:
    """Makes a client per run: a real provider when one is configured, else offline."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return lambda: AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model().async_client


def build_agent(client: Callable[[], AsyncOpenAI]) -> Agent:
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    return Agent(client=client, model=model, tools=[get_weather])


def main() -> None:
    agent = build_agent(client_factory())
    for question in QUESTIONS:
        result = agent.run_sync(question)
        print(f"Q: {question}\nA: {result.output}\n")


if __name__ == "__main__":
    main()
