"""`python -m agentstream web`: the chat page and its API, with the page's demo tools.

With no `--base-url` and no API key it talks to the offline demo model, so it works with
no network. It listens on loopback unless `--allow-remote` is given; `--token` (or the
`AGENTSTREAM_WEB_TOKEN` variable) makes every API request carry a bearer token, which
the page reads from its address (`http://host:port/#token=...`); off loopback without
one, a token is generated and printed once. Only agentstream's own lines are logged
(other libraries' INFO lines can hold URLs with credentials).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence

from .._agent import Agent
from .._exceptions import SetupError
from ..loop._retries import Retries
from ..stores import SQLiteStore
from ._args import Parser, port, positive, seconds
from ._demo import connect, listen
from ._durable import database_url, durable_agent
from ._toolflags import add_tool_flags, mcp_servers, tools_of

__all__ = ["main"]


def _parser() -> Parser:
    parser = Parser(
        prog="python -m agentstream web",
        description="Serve the chat page and its streaming API (offline demo model by default).",
        epilog="exit status: 2 bad usage or setup (a port in use: one line), 130 stopped (Ctrl-C)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=port, default=8000, help="default: 8000; 0 picks one")
    parser.add_argument(
        "--allow-remote", action="store_true",
        help="allow a --host other than loopback (a token is generated unless --token)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="also answer to this Host name (or name:port); loopback names always are",
    )  # fmt: skip
    parser.add_argument(
        "--allow-origin", action="append", default=[], metavar="ORIGIN",
        help="also accept browser requests from this origin, e.g. http://localhost:3000",
    )  # fmt: skip
    parser.add_argument(
        "--token", metavar="TOKEN",
        help="require 'Authorization: Bearer TOKEN' on the API (see AGENTSTREAM_WEB_TOKEN)",
    )  # fmt: skip
    parser.add_argument(
        "--session", metavar="FILE",
        help="keep runs paused for approval in this SQLite file (they survive a restart)",
    )  # fmt: skip
    parser.add_argument(
        "--durable", metavar="URL",
        help="run each chat as a durable DBOS workflow in this SQLite file or Postgres URL; "
        "clients reattach after a reload or a restart (needs the dbos extra)",
    )  # fmt: skip
    parser.add_argument(
        "--worker", metavar="NAME",
        help="with --durable: this server's name among those sharing the database (default: "
        "a name of its own); a restarted server recovers the runs of its name at once, and "
        "a live one takes over those of a server silent for --stale seconds",
    )  # fmt: skip
    parser.add_argument(
        "--stale", type=seconds, default=15.0, metavar="SECONDS",
        help="with --durable: a server whose heartbeat is this old is taken over (default: 15)",
    )  # fmt: skip
    parser.add_argument(
        "--grace", type=seconds, default=30.0, metavar="SECONDS",
        help="with --durable: on SIGTERM, how long the runs in progress may take to finish "
        "before the rest are handed to another server (default: 30)",
    )  # fmt: skip
    parser.add_argument("--model", help="model name (see OPENAI_MODEL)")
    parser.add_argument("--base-url", metavar="URL", help="see OPENAI_BASE_URL")
    parser.add_argument("--api-key", metavar="KEY", help="see OPENAI_API_KEY")
    parser.add_argument(
        "--api", choices=("chat", "responses"), default="chat",
        help="the wire: Chat Completions (default) or the Responses API",
    )  # fmt: skip
    parser.add_argument("--system", metavar="TEXT", help="system instructions")
    parser.add_argument("--max-steps", type=positive, default=10, help="default: 10")
    add_tool_flags(parser, defaults="the page's demo tools")
    parser.add_argument(
        "--ttft", type=seconds, default=0.35, help="offline model: seconds to first token"
    )
    parser.add_argument("--tps", type=seconds, default=60, help="offline model: tokens per second")
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _own_logging() -> None:
    """agentstream's INFO lines on stderr, and no other library's (they may print URLs)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("agentstream")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run `python -m agentstream web`; return the exit status."""
    env = os.environ if environ is None else environ
    args = _parser().parse([] if argv is None else argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"agentstream web: {args.host} is not a loopback address; add --allow-remote "
            "(and --token) to listen on it",
            file=sys.stderr,
        )
        return 2
    try:
        from ..web import demo_tools, serve
    except ImportError:
        raise SetupError("web needs the web extra: pip install 'agentstream[web]'") from None
    token = args.token or env.get("AGENTSTREAM_WEB_TOKEN") or None
    if token is None and not _is_loopback(args.host):
        token = secrets.token_urlsafe(24)  # shown once, in the address printed below
    # The same connection rules as the chat command (flags, then the SDK's variables).
    connection = connect(
        model=args.model, base_url=args.base_url, api_key=args.api_key, environ=env,
        max_retries=0, ttft=max(args.ttft, 0.0), tokens_per_second=args.tps or None,
    )  # fmt: skip
    model = connection.model
    servers = mcp_servers(args)
    client, transport = connection.client_factory(), None
    if args.durable and connection.offline:  # a DBOS step reaches it through its transport
        from ..testing import offline_model

        offline = offline_model(ttft=max(args.ttft, 0.0), tokens_per_second=args.tps or None)
        client, transport = offline.async_client, offline.async_transport()
    agent = Agent(
        client=client,
        model=model,
        tools=[*tools_of(args, demo_tools), *servers],
        instructions=args.system,
        max_steps=args.max_steps,
        retries=Retries(max_retries=2),
        api=args.api,
    )
    _own_logging()
    sock = listen(args.host, args.port)  # a port in use is one line and exit 2, here
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    suffix = f"/#token={token}" if token else "/"
    bound = sock.getsockname()[1]
    store = SQLiteStore(args.session) if args.session else None
    durable, contexts = None, list(servers)
    if args.durable:
        url = database_url(args.durable)
        durable, launched = durable_agent(
            agent, url, args.worker, transport, stale=args.stale, grace=args.grace
        )
        contexts.append(launched)
    # Printed once the server can start (a missing extra is said first, alone).
    print(f"agentstream web: http://{shown}:{bound}{suffix} (model {model})", file=sys.stderr)
    with sock:
        serve(
            agent, host=args.host, port=bound, token=token, store=store,
            allowed_hosts=args.allow_host, allowed_origins=args.allow_origin,
            sockets=[sock], contexts=contexts, durable=durable,
            # Durable: the open streams end at once (their clients reattach, to any
            # server) while the runs go on here for --grace seconds.
            graceful=1 if durable is not None else None,
        )  # fmt: skip
    if durable is not None:
        # Drained and handed off: end at once, since a tool the hand-off cut may still
        # be running in a thread, and its run goes on on another server.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
