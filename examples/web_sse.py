"""Stream an agent run to the browser as Server-Sent Events, with Starlette, by hand.

`agentstream.web.create_app` does all of this and more (the AI SDK's UI message stream,
reattaching, a full chat page); this example shows the few lines underneath.

Run it with `python examples/web_sse.py` (needs the `web` extra: starlette and uvicorn)
and open http://127.0.0.1:8001. Offline unless OPENAI_API_KEY or OPENAI_BASE_URL is set
(then OPENAI_MODEL picks the model, gpt-4o-mini by default).

`GET /chat?q=...` sends one `data:` line of JSON per event (`safe_event_dict`: an error
is its type and message, never a traceback), ending with `run_finished` (or
`run_failed`); the page's `EventSource` renders text as it streams, each tool call with
its arguments as they grow, and each tool's result. When
the browser goes away the run is left, which closes the model's stream and cancels the
tools still running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import anyio
import uvicorn
from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from agentstream import Agent, AgentRun, RunError, tool
from agentstream.testing import offline_model
from agentstream.web import safe_event_dict


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
    return offline_model(ttft=0.3, tokens_per_second=30).async_client


def build_agent(client: Callable[[], AsyncOpenAI]) -> Agent:
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    return Agent(client=client, model=model, tools=[get_weather])


class EventStream(Response):
    """One agent run as Server-Sent Events; the run ends when the client disconnects."""

    media_type = "text/event-stream"

    def __init__(self, run: AgentRun) -> None:
        # No body: Response.__init__ would announce `content-length: 0`.
        self.run = run
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async with anyio.create_task_group() as task_group:

            async def leave_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                task_group.cancel_scope.cancel()  # leaves `async with self.run` below

            task_group.start_soon(leave_on_disconnect)
            try:
                async with self.run as run:
                    async for event in run:
                        await send(_body(f"data: {json.dumps(safe_event_dict(event))}\n\n"))
            except RunError:
                pass  # the client has already been sent the `run_failed` event
            await send(_body("", more=False))
            task_group.cancel_scope.cancel()


def _body(text: str, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": text.encode(), "more_body": more}


def build_app(agent: Agent) -> Starlette:
    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def chat(request: Request) -> Response:
        return EventStream(agent.stream(request.query_params.get("q", "")))

    return Starlette(routes=[Route("/", index), Route("/chat", chat)])


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>agentstream</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; }
  input { width: 32rem; } .call { font-family: monospace; color: #555; margin: .5rem 0; }
  .result { color: #070; } .error { color: #b00; } p { white-space: pre-wrap; }
</style>
<form id="ask"><input id="q" value="What's the weather in Paris and Tokyo?">
<button>Ask</button></form>
<div id="out"></div>
<script>
const out = document.getElementById("out");
let source = null;
function add(tag, cls, text) {
  const el = document.createElement(tag);
  el.className = cls;
  el.textContent = text;
  out.append(el);
  return el;
}
document.getElementById("ask").onsubmit = (e) => {
  e.preventDefault();
  if (source) source.close();
  out.textContent = "";
  const calls = {};  // "step:index" -> the call's arguments element
  let text = null;   // the paragraph the current step's text streams into
  source = new EventSource("/chat?q=" + encodeURIComponent(document.getElementById("q").value));
  source.onmessage = (message) => {
    const ev = JSON.parse(message.data);
    const key = ev.step + ":" + ev.index;
    switch (ev.type) {
      case "step_started": text = null; break;
      case "text_delta": (text ??= add("p", "", "")).textContent += ev.text; break;
      case "tool_call_started":
        add("div", "call", ev.name + " ");
        calls[key] = out.lastChild.appendChild(document.createElement("span"));
        break;
      case "tool_call_delta": calls[key].textContent += ev.delta; break;
      case "tool_finished":
        add("div", ev.error ? "call error" : "call result", "\u21b3 " + ev.output);
        break;
      case "run_finished":
        add("div", "call", ev.result.stop_reason + " in " + ev.result.duration.toFixed(2) + " s");
        source.close();
        break;
      case "run_failed": add("div", "error", ev.error.message); source.close(); break;
    }
  };
  source.onerror = () => { add("div", "error", "connection lost"); source.close(); };
};
</script>
"""

app = build_app(build_agent(client_factory()))

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8001)
