"""Consume a run's event stream with `match`: text, tool calls, tools, metrics.

Run it with `python examples/events.py ["your question"]`. Offline unless OPENAI_API_KEY
or OPENAI_BASE_URL is set (then OPENAI_MODEL picks the model, gpt-4o-mini by default).
Each event is a frozen dataclass, so a `match` statement on the classes reads every
field with its type.
"""

from __future__ import annotations

import asyncio
import os
import sys

from openai import AsyncOpenAI

from agentstream import (
    Agent,
    ReasoningDelta,
    RunFinished,
    StepFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    ToolFinished,
    ToolStarted,
    tool,
)
from agentstream.testing import offline_model


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"Sunny and 21 °C in {location}"


def make_client() -> AsyncOpenAI:
    """A real provider when one is configured, else the offline model."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model(ttft=0.2, tokens_per_second=60).async_client()  # paced, to see it stream


def build_agent(client: AsyncOpenAI) -> Agent:
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    return Agent(client=client, model=model, tools=[get_weather])


def metrics(step: StepFinished) -> str:
    """A step's timings and token counts, as far as the server reported them."""
    parts = [f"{step.duration * 1000:.0f} ms"]
    if step.time_to_first_token is not None:
        parts.append(f"first token after {step.time_to_first_token * 1000:.0f} ms")
    if step.usage is not None:
        parts.append(f"{step.usage.completion_tokens} tokens")
    if step.tokens_per_second is not None:
        parts.append(f"{step.tokens_per_second:.0f} tokens/s")
    return ", ".join(parts)


async def show(agent: Agent, prompt: str) -> None:
    """Print every interesting event of one run as it happens."""
    streaming: str | None = None  # the label of the line pieces are streaming into

    def piece(label: str, text: str) -> None:
        nonlocal streaming
        if label != streaming:
            print(label if streaming is None else f"\n{label}", end="")
            streaming = label
        print(text, end="", flush=True)

    def line(text: str) -> None:
        nonlocal streaming
        print(text if streaming is None else f"\n{text}", flush=True)
        streaming = None

    async with agent.stream(prompt) as run:
        async for event in run:
            match event:
                case ReasoningDelta(text=text):
                    piece("[thinking] ", text)
                case TextDelta(text=text):
                    piece("", text)
                case ToolCallStarted(index=index, name=name):
                    piece(f"[model] call #{index}: {name} ", "")
                case ToolCallDelta(index=index, name=name, delta=delta):
                    # The JSON arguments as they stream; parallel calls may interleave.
                    piece(f"[model] call #{index}: {name} ", delta)
                case ToolStarted(name=name, arguments=arguments):
                    line(f"[tool] {name}({arguments}) started")
                case ToolFinished(name=name, output=output, duration=duration):
                    line(f"[tool] {name} -> {output!r} ({duration * 1000:.1f} ms)")
                case StepFinished() as step:
                    line(f"[step {step.step}] {step.finish_reason}: {metrics(step)}")
                case RunFinished(result=result):
                    line(
                        f"[run] {result.stop_reason} after {len(result.steps)} steps, "
                        f"{result.usage.total_tokens} tokens, {result.duration:.2f} s"
                    )
                case _:
                    pass  # RunStarted, StepStarted, ToolCallReady, ...


async def main(prompt: str = "What's the weather in Paris and Tokyo?") -> None:
    async with make_client() as client:
        await show(build_agent(client), prompt)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:2]))
