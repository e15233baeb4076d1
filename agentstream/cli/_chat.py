"""The chat command (no subcommand): build the agent the flags describe and run the demo.

Where output goes: the run's transcript (or `--json` event lines) on stdout, and every
diagnostic (the banner, errors, notes, "interrupted") on stderr. With typed output and
stdout not a terminal (or `--json`), stdout holds only the validated answer as JSON, so
`| jq` works; the transcript, or the event lines with `--json`, go to stderr instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from .._agent import Agent
from .._exceptions import AgentStreamError, SetupError
from ..loop._retries import Retries
from ..state._store import Session
from ..stores import SQLiteStore
from ..tools._tool import Tool
from ._approve import approver
from ._loader import demo_tools_folder, load_default_tools
from ._output import ValueSink, load_output
from ._render import EventSink, JsonRenderer, Renderer
from ._toolflags import mcp_servers, mcp_tool_names, tools_of

__all__ = ["chat"]


def chat(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run the chat command for parsed `args`; return the exit status."""
    from ._demo import banner, connect, run_demo

    connection = connect(
        model=args.model,
        base_url=args.base_url,
        api_key=args.api_key,
        environ=environ,
        max_retries=args.max_retries,
        ttft=args.ttft,
        tokens_per_second=args.tps or None,
    )
    _check_session_flags(args)
    tools = tools_of(args, _default_tools)
    servers = mcp_servers(args)
    output: Any = load_output(args.output_schema, args.output)
    agent = Agent(
        client=connection.client_factory(),
        model=connection.model,
        tools=[*tools, *servers],
        instructions=args.system,
        max_steps=args.max_steps,
        retries=Retries(max_retries=args.max_retries),
        early_tools=args.early,
        approver=approver(args.approve, sys.stdin, sys.stderr),
        output_type=output,
        output_mode=args.output_mode,
        api=args.api,
    )
    colours = not args.no_color and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"
    sink: EventSink
    if output is not None and (args.json or not sys.stdout.isatty()):
        # For scripts: the answer alone on stdout; what leads to it on stderr.
        live = colours and sys.stderr.isatty() and not args.json
        progress: EventSink = (
            JsonRenderer(sys.stderr, redact=connection.redact)
            if args.json
            else Renderer(sys.stderr, terminal=live)
        )
        sink = ValueSink(sys.stdout, progress)
    elif args.json:
        live = False
        sink = JsonRenderer(sys.stdout, redact=connection.redact)
    else:
        live = colours and sys.stdout.isatty()
        sink = Renderer(sys.stdout, terminal=live)
    if not args.json:
        try:
            names = [t.name for t in tools] + mcp_tool_names(servers)
        except AgentStreamError as exc:
            print(f"error: {connection.redact(str(exc))}", file=sys.stderr)
            return 1
        print(banner(connection, names, chat=args.prompt is None), file=sys.stderr)
    status = run_demo(
        agent,
        connection,
        sink,
        prompt=args.prompt,
        live=live,
        stdout=sys.stdout,
        stderr=sys.stderr,
        session=Session(SQLiteStore(args.session), "cli") if args.session else None,
        resume=args.resume,
        forget=args.forget,
        servers=servers,
    )
    if status == 0 and isinstance(sink, ValueSink) and not sink.printed:
        print("error: the run ended without a validated answer", file=sys.stderr)
        return 1
    return status


def _check_session_flags(args: argparse.Namespace) -> None:
    if args.resume and args.forget:
        raise SetupError("give --resume or --forget, not both")
    for flag, does in (("--resume", "continues"), ("--forget", "drops")):
        if getattr(args, flag[2:]) and not args.session:
            raise SetupError(f"{flag} {does} a session's unfinished run: give --session FILE too")


def _default_tools() -> list[Tool]:
    folder = demo_tools_folder()
    if folder is None:
        return []
    try:
        return load_default_tools(folder)
    except SetupError as exc:
        print(f"warning: running without the repository's tools: {exc}", file=sys.stderr)
        return []
