"""Stream an agent run from Flask (a synchronous framework) as Server-Sent Events.

Run it with `python examples/web_flask.py` (needs flask) and try
`curl -N 'http://127.0.0.1:8002/chat?q=weather+in+Paris+and+Tokyo'`. Offline unless
OPENAI_API_KEY or OPENAI_BASE_URL is set.

`agent.stream_sync(...)` runs the agent in a worker thread with its own event loop and
hands its events to this thread one at a time. When the client goes away, the WSGI server
closes the response's generator, whose `with` block then cancels the run (its model
stream and its tools). Errors reach the client as their type and message only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator

from flask import Flask, Response, request
from openai import AsyncOpenAI

from agentstream import Agent, RunError, tool
from agentstream.testing import offline_model
from agentstream.web import error_text, safe_event_dict

logger = logging.getLogger(__name__)


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"Sunny and 21 °C in {location}"


def client_factory() -> Callable[[], AsyncOpenAI]:
    """A client per run (each run has its own event loop): a real provider, else offline."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return lambda: AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model(ttft=0.2, tokens_per_second=60).async_client


def build_app(agent: Agent) -> Flask:
    app = Flask(__name__)

    @app.get("/chat")
    def chat() -> Response:
        prompt = request.args.get("q", "")

        def events() -> Iterator[str]:
            with agent.stream_sync(prompt) as run:
                try:
                    for event in run:
                        yield f"data: {json.dumps(safe_event_dict(event))}\n\n"
                except RunError as exc:
                    # The client has had the `run_failed` event (type and message only).
                    logger.info("run failed: %s", error_text(exc))

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return Response(events(), mimetype="text/event-stream", headers=headers)

    return app


model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
app = build_app(Agent(client=client_factory(), model=model, tools=[get_weather]))

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8002, threaded=True)
