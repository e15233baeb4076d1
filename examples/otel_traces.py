"""A run traced with OpenTelemetry: the span tree of two steps and two parallel tool calls.

Run it with `python examples/otel_traces.py` (it needs `pip install 'agentstream[otel]'
opentelemetry-sdk`). Offline unless OPENAI_API_KEY or OPENAI_BASE_URL is set (then
OPENAI_MODEL picks the model, gpt-4o-mini by default). The spans are kept in memory and
printed as a tree when the run ends; to send them to a collector instead, see the README
("Traces"). The tool opens a span of its own with the global tracer: it nests under the
tool call's `execute_tool` span, because the tool runs inside that span's context.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import anyio
from openai import AsyncOpenAI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentstream import Agent, tool
from agentstream.otel import Tracing
from agentstream.testing import offline_model

PROMPT = "What's the weather in Paris and Tokyo?"
SHOWN = (
    "gen_ai.request.model",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.tool.call.id",
    "agentstream.attempt",
    "error.type",
)


@tool
async def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    # Any code the tool calls can trace itself as usual, with the global tracer.
    with trace.get_tracer("weather-service").start_as_current_span(f"GET /weather/{location}"):
        await anyio.sleep(0.05)  # a slow API
        return f"Sunny and 21 °C in {location}"


def make_client() -> AsyncOpenAI:
    """A real provider when one is configured, else the offline model."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model().async_client()


def build_agent(client: AsyncOpenAI, provider: TracerProvider | None = None) -> Agent:
    """An agent whose runs are traced (to the global tracer provider unless given one)."""
    return Agent(
        client=client,
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        tools=[get_weather],
        observers=[Tracing(tracer_provider=provider)],
    )


def span_tree(spans: Sequence[ReadableSpan]) -> list[str]:
    """One line per span, indented under its parent: name, milliseconds, key attributes."""
    ids = {span.context.span_id for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            attributes = span.attributes or {}
            shown = " ".join(
                f"{key.split('.', 1)[1]}={_brief(attributes[key])}"
                for key in SHOWN
                if key in attributes
            )
            status = " ERROR" if span.status.status_code.name == "ERROR" else ""
            lines.append(
                f"{'  ' * depth}{span.name:<{44 - 2 * depth}} {took:8.1f} ms{status}  {shown}"
            )
            if span.context is not None:
                walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


def _brief(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


async def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the tool's own spans use the global tracer
    async with make_client() as client:
        result = await build_agent(client).run(PROMPT)
    print("\n".join(span_tree(exporter.get_finished_spans())))
    print()
    print(result.output)


if __name__ == "__main__":
    asyncio.run(main())
