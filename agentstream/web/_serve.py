"""`python -m agentstream web`: the chat page and its API, with demo tools.

With no `--base-url` and no API key it talks to the offline demo model, so it works with
no network. It listens on loopback unless `--allow-remote` is given; `--token` (or the
`AGENTSTREAM_WEB_TOKEN` variable) then makes every API request carry a bearer token,
which the page reads from its address (`http://host:port/#token=...`).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence

import anyio
import openai

from agentstream import Agent, Retries, Tool, tool

from ._app import create_app

__all__ = ["demo_tools", "main", "serve"]

_DEFAULT_MODEL = "gpt-4o-mini"


@tool
async def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    seed = zlib.crc32(location.strip().lower().encode())
    await anyio.sleep(0.3 + (seed % 7) / 10)  # a backend's latency, so the timeline shows it
    conditions = ("sunny", "cloudy", "light rain", "windy", "clear")[seed % 5]
    return f"{conditions}, {8 + seed % 20} °C in {location}"


@tool
async def wait_seconds(seconds: float) -> str:
    """Wait a number of seconds, like a slow job (try the stop button on it).

    Args:
        seconds: How long to wait, at most 600.
    """
    await anyio.sleep(min(max(seconds, 0.0), 600.0))
    return f"waited {seconds:g} seconds"


def demo_tools() -> list[Tool]:
    """The tools the page offers by default: weather (with latency) and a slow job."""
    return [get_weather, wait_seconds]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agentstream web",
        description="Serve the chat page and its streaming API (offline demo model by default).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument(
        "--allow-remote", action="store_true",
        help="allow a --host other than loopback (use --token with it)",
    )  # fmt: skip
    parser.add_argument(
        "--token", metavar="TOKEN",
        help="require 'Authorization: Bearer TOKEN' on the API (see AGENTSTREAM_WEB_TOKEN)",
    )  # fmt: skip
    parser.add_argument("--model", help="model name (see OPENAI_MODEL)")
    parser.add_argument("--base-url", metavar="URL", help="see OPENAI_BASE_URL")
    parser.add_argument("--api-key", metavar="KEY", help="see OPENAI_API_KEY")
    parser.add_argument("--system", metavar="TEXT", help="system instructions")
    parser.add_argument("--max-steps", type=int, default=10, help="default: 10")
    parser.add_argument(
        "--ttft", type=float, default=0.35, help="offline model: seconds to first token"
    )
    parser.add_argument("--tps", type=float, default=60, help="offline model: tokens per second")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client_factory(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Callable[[], openai.AsyncOpenAI], str]:
    base_url = args.base_url or environ.get("OPENAI_BASE_URL")
    api_key = args.api_key or environ.get("OPENAI_API_KEY")
    if base_url or api_key:
        model = args.model or environ.get("OPENAI_MODEL") or _DEFAULT_MODEL

        def make() -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "unused")

        return make, model
    from agentstream.testing import OFFLINE_MODEL_NAME, offline_model

    pace = offline_model(ttft=max(args.ttft, 0.0), tokens_per_second=args.tps or None)
    return pace.async_client, OFFLINE_MODEL_NAME


def serve(
    agent: Agent, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None
) -> None:
    """Serve the page and the API for `agent` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(agent, token=token)
    uvicorn.run(app, host=host, port=port, log_level="info")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run `python -m agentstream web`; return the exit status."""
    env = os.environ if environ is None else environ
    args = _parser().parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"agentstream web: {args.host} is not a loopback address; add --allow-remote "
            "(and --token) to listen on it",
            file=sys.stderr,
        )
        return 2
    token = args.token or env.get("AGENTSTREAM_WEB_TOKEN") or None
    factory, model = _client_factory(args, env)
    agent = Agent(
        client=factory,
        model=model,
        tools=demo_tools(),
        instructions=args.system,
        max_steps=args.max_steps,
        retries=Retries(max_retries=2),
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    suffix = f"/#token={token}" if token else "/"
    print(f"agentstream web: http://{shown}:{args.port}{suffix} (model {model})", file=sys.stderr)
    serve(agent, host=args.host, port=args.port, token=token)
    return 0
