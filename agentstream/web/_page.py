"""The chat page: its files, served from the package with a strict content security policy."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["no_content", "page_file"]

_PAGE_FILES = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def page_file(request: Request) -> Response:
    """The page or one of its static files, with a strict content security policy."""
    name = request.path_params.get("name", "index.html")
    if name not in _PAGE_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    content = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
    headers = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}
    return Response(content, media_type=_PAGE_FILES[name], headers=headers)


async def no_content(request: Request) -> Response:
    """Nothing (the favicon's answer)."""
    return Response(status_code=204)
