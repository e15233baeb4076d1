"""Run an agent on any OpenAI-compatible server: Ollama, vLLM, llama.cpp, LM Studio, ...

    python examples/other_servers.py                  # Ollama, llama3.2
    python examples/other_servers.py ollama qwen2.5   # Ollama, another model
    python examples/other_servers.py vllm             # vLLM, Qwen/Qwen2.5-7B-Instruct
    python examples/other_servers.py http://gpu-box:8000/v1 my-model
    python examples/other_servers.py offline          # no server: the offline model, on loopback

The first argument is `ollama` (http://localhost:11434/v1, the default), `vllm`
(http://localhost:8000/v1) or a base URL; with none, OPENAI_BASE_URL picks the server if
set. The second is the model name, else OPENAI_MODEL, else the default shown above.

Start the server first: `ollama serve` and `ollama pull llama3.2`, or
`vllm serve Qwen/Qwen2.5-7B-Instruct --enable-auto-tool-choice --tool-call-parser hermes`
(vLLM needs both flags for tool calls). The model must support tool calling. When no
server answers, the script says so and exits 0. `offline` serves agentstream's offline
model on a loopback port and talks to it by its URL, exactly as to any other server.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Sequence

import anyio
import openai
from openai import AsyncOpenAI

from agentstream import Agent, tool

SERVERS = {
    "ollama": ("http://localhost:11434/v1", "llama3.2"),
    "vllm": ("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct"),
}


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"Sunny and 21 °C in {location}"


def server(argv: Sequence[str]) -> tuple[str, str]:
    """The base URL and model name chosen by the arguments, the environment or default."""
    choice = argv[0] if argv else os.environ.get("OPENAI_BASE_URL", "ollama")
    base_url, model = SERVERS.get(choice, (choice, SERVERS["ollama"][1]))
    return base_url, argv[1] if len(argv) > 1 else os.environ.get("OPENAI_MODEL", model)


def build_agent(client: AsyncOpenAI, model: str) -> Agent:
    return Agent(client=client, model=model, tools=[get_weather])


async def main(argv: Sequence[str] = ()) -> int:
    if argv and argv[0] == "offline":
        return await offline()
    base_url, model = server(argv)
    # Local servers ignore the key, but the SDK insists on one.
    api_key = os.environ.get("OPENAI_API_KEY") or "unused"
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0) as client:
        try:
            await client.models.list(timeout=3)
        except openai.APIConnectionError as exc:  # refused, unreachable or timed out
            print(f"No OpenAI-compatible server answered at {base_url} ({exc})")
            print("Start Ollama or vLLM (see this script's docstring), or pass a base URL.")
            return 0
        result = await build_agent(client, model).run("What's the weather in Paris and Tokyo?")
    print(f"{model} at {base_url}: {result.output}")
    return 0


async def offline() -> int:
    """The same agent against the offline model, served over HTTP on a free loopback port."""
    from agentstream.testing import OFFLINE_MODEL_NAME, serve_model

    async with anyio.create_task_group() as tasks:
        port = await tasks.start(functools.partial(serve_model, port=0, ttft=0))
        status = await main([f"http://127.0.0.1:{port}/v1", OFFLINE_MODEL_NAME])
        tasks.cancel_scope.cancel()
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
