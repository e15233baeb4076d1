"""Serve the React useChat example and agentstream's /api/chat from one origin.

`python examples/react_chat/server.py [--port 8000]` after building the bundle (see
README.md). The page and its bundle come from `static/`; everything else (the API and
its checks) is `agentstream.web.create_app`'s, mounted under it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route

from agentstream import Agent
from agentstream.testing import OFFLINE_MODEL_NAME, offline_model
from agentstream.web import create_app, demo_tools

STATIC = Path(__file__).parent / "static"
_FILES = {"/": "index.html", "/bundle.js": "bundle.js", "/app.css": "app.css"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def react_app(agent: Agent, static: Path = STATIC) -> Starlette:
    """The React page and bundle from `static`, and agentstream's app for the rest."""

    async def page_file(request: Request) -> Response:
        path = static / _FILES[request.url.path]
        if not path.is_file():
            return Response("build the bundle first (see README.md)", status_code=404)
        headers = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}
        return FileResponse(path, headers=headers)

    routes = [Route(path, page_file) for path in _FILES]
    return Starlette(routes=[*routes, Mount("/", app=create_app(agent))])


def offline_agent() -> Agent:
    """The web demo's tools against the offline model, at a visible pace."""
    model = offline_model(ttft=0.2, tokens_per_second=60)
    return Agent(client=model.async_client, model=OFFLINE_MODEL_NAME, tools=demo_tools())


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the React useChat example")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(react_app(offline_agent()), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
