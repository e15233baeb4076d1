"""The checks every request passes before the app sees it: a local server's rules.

A browser lets any page it shows send requests to a server on loopback, and with DNS
rebinding even read the answers. So, in this order:

1. `Host` must be one the app answers to: the loopback names (`localhost`, `127.0.0.1`,
   `[::1]`, any port) and those the deployer lists. A rebound name (`evil.example:8000`)
   is refused, so a page of that origin can neither read nor act.
2. A request that changes something (every method but GET and HEAD) and every `/api/`
   request must come from the app's own origin or a listed one, when a browser says
   where it comes from (`Origin`, `Sec-Fetch-Site`). Clients that are not browsers send
   neither and pass (they cannot be driven by a web page).
3. A POST to `/api/` must say `Content-Type: application/json`: a cross-origin page can
   only send that after a CORS preflight, which this app never grants.
4. With a token, every `/api/` request carries `Authorization: Bearer <token>`
   (compared in constant time).

Refusals are short JSON documents that echo nothing of the request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_HOSTS", "Guard", "valid_key"]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The names a local server answers to without being told (any port)."""

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:~")
_MAX_KEY = 128
_SAFE_METHODS = ("GET", "HEAD")
_SAME = ("same-origin", "none")  # `Sec-Fetch-Site` of the app's own page, or a typed URL


def valid_key(key: object) -> bool:
    """Whether `key` can name a chat or a run: 1 to 128 URL- and header-safe characters."""
    return isinstance(key, str) and 0 < len(key) <= _MAX_KEY and _KEY_CHARS.issuperset(key)


def _host_port(value: str) -> tuple[str, str]:
    """A `Host` value (or an origin's netloc) as lower-case host and port ('' if none)."""
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 literal
        end = value.find("]")
        host, rest = value[: end + 1], value[end + 1 :]
        return host, rest[1:] if rest.startswith(":") else ""
    host, _, port = value.partition(":")
    return host, port


class Guard:
    """ASGI middleware applying the module's checks.

    `hosts` adds names (any port) or `name:port` values to the loopback names; `*` lets
    any host in. `origins` are the other origins browsers may call from.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: Iterable[str] | None = None,
        origins: Iterable[str] = (),
        token: str | None = None,
    ) -> None:
        self.app = app
        listed = [h.strip().lower() for h in (*LOOPBACK_HOSTS, *(hosts or ()))]
        self.any_host = "*" in listed
        self.hosts: set[str] = set()  # names allowed on any port
        self.host_ports: set[tuple[str, str]] = set()  # `name:port` entries
        for entry in listed:
            host, port = _host_port(entry)
            if entry != "*":
                (self.host_ports.add((host, port)) if port else self.hosts.add(host))
        self.origins = {o.strip().lower().rstrip("/") for o in origins}
        self.expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            status, message = refusal
            await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why the request is refused (status, message), or None when it may go on."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.host_allowed(host):
            return 403, "this server does not answer to that host name"
        api = "/api/" in scope["path"]
        method = scope["method"]
        if (api or method not in _SAFE_METHODS) and not self.origin_allowed(headers, host):
            return 403, "requests from other sites are refused"
        if api and method not in _SAFE_METHODS:
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                return 415, "send the request as Content-Type: application/json"
        if api and self.expected is not None:
            given = headers.get("authorization", "").encode("latin-1", "replace")
            if not secrets.compare_digest(given, self.expected):
                return 401, "a bearer token is required"
        return None

    def host_allowed(self, value: str) -> bool:
        if self.any_host:
            return True
        if not value:
            return False
        host, port = _host_port(value)
        return host in self.hosts or (host, port) in self.host_ports

    def origin_allowed(self, headers: Headers, host: str) -> bool:
        origin = headers.get("origin")
        if origin is None:
            # Browsers send `Origin` on every cross-origin request but a no-cors GET;
            # `Sec-Fetch-Site` covers that one. Other clients send neither.
            return headers.get("sec-fetch-site", "none").lower() in _SAME
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host.strip().lower()
