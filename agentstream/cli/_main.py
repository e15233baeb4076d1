"""The command line: `python -m agentstream [-p PROMPT] [replay FILE | serve-model | bench]`."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from .._agent import Agent
from .._exceptions import AgentStreamError, SetupError
from .._retries import Retries
from .._store import Session
from .._tools import Tool
from ..stores import SQLiteStore
from ._approve import approver
from ._loader import demo_tools_folder, load_default_tools, load_tools
from ._render import EventSink, JsonRenderer, Renderer
from ._replay import replay

__all__ = ["main"]

_DESCRIPTION = """\
agentstream: a runtime for tool-calling agents over streamed Chat Completions.

Without a subcommand, chat with an agent and watch it work: its reasoning and text as
they stream, each tool call's arguments as they grow, the tools as they run, and the
timings of every step. With no API key and no base URL it talks to an offline demo
model (no network, no API key) that picks tools from their schemas.
"""

_USAGE = """\
python -m agentstream [-p TEXT] [--json] [--early] [--model MODEL] [--tools SPEC]
                             [--output-schema FILE | --output MODULE:TYPE] [options]
       python -m agentstream replay FILE [--events]
       python -m agentstream serve-model [--host HOST] [--port PORT] [--ttft S] [--tps N]
       python -m agentstream load-test [--runs N] [--fault-rate SHARE] [--json]
       python -m agentstream bench [--quick] [--json] [--reps N] [--only SECTIONS]
       python -m agentstream web [--host HOST] [--port PORT] [--allow-remote] [--token T]"""

_EPILOG = """\
environment (as the openai SDK reads them; flags win):
  OPENAI_API_KEY    API key of the provider (prefer this to --api-key, which `ps` shows)
  OPENAI_BASE_URL   base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
  OPENAI_MODEL      model to use when not offline (default: gpt-4o-mini)
  NO_COLOR          any value turns colours and live redraw off

exit status: 0 done, 1 the run failed, 2 bad usage or setup, 130 interrupted (Ctrl-C)

examples:
  python -m agentstream -p "What's the weather in Paris and Tokyo?"
  python -m agentstream --json -p "What is 17 * 23?" | jq .type
  python -m agentstream serve-model --port 8000
  OPENAI_API_KEY=sk-... python -m agentstream --model gpt-4o-mini --tools my_tools.py
"""


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1, not {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (0 to 65535), not {text!r}")
    return value


def _add_pace(parser: argparse.ArgumentParser, ttft: float, tps: float) -> None:
    pace = parser.add_argument_group("offline model pace")
    pace.add_argument(
        "--ttft", type=_seconds, default=ttft, metavar="SECONDS",
        help=f"seconds before the first token (default: {ttft})",
    )  # fmt: skip
    pace.add_argument(
        "--tps", type=_seconds, default=tps, metavar="N",
        help=f"tokens per second, 0 for flat out (default: {tps:g})",
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agentstream",
        usage=_USAGE,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # A mistyped or unknown flag is an error, never another flag it abbreviates.
        allow_abbrev=False,
    )
    _add_run_options(parser)
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        title="subcommands",
        description="`python -m agentstream COMMAND --help` tells more.",
    )
    _add_replay(commands)
    _add_serve_model(commands)
    _add_load_test(commands)
    _add_bench(commands)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--prompt", metavar="TEXT", help="run one turn and exit")
    parser.add_argument(
        "--json", action="store_true", help="print every event as one JSON line, for scripts"
    )
    parser.add_argument(
        "--no-color", action="store_true", help="plain text: no colours, no live redraw"
    )
    connection = parser.add_argument_group("model and provider")
    connection.add_argument("--model", help="model name (see OPENAI_MODEL)")
    connection.add_argument("--base-url", metavar="URL", help="see OPENAI_BASE_URL")
    connection.add_argument("--api-key", metavar="KEY", help="see OPENAI_API_KEY")
    connection.add_argument(
        "--api", choices=("chat", "responses"), default="chat",
        help="the wire: Chat Completions (default) or the Responses API (POST /responses)",
    )  # fmt: skip
    connection.add_argument(
        "--max-retries", type=_count, default=2, metavar="N",
        help="retries of a failed step, before or after partial output (default: 2)",
    )  # fmt: skip
    agent = parser.add_argument_group("agent")
    agent.add_argument(
        "--tools", action="append", metavar="SPEC",
        help="a module name, a .py file or a folder of them; every agentstream.Tool at "
        "their top level is offered (repeatable; replaces the repository's tools/)",
    )  # fmt: skip
    agent.add_argument(
        "--no-default-tools", action="store_true",
        help="do not load the repository's tools/ package",
    )  # fmt: skip
    agent.add_argument(
        "--mcp", action="append", metavar="COMMAND",
        help='an MCP server to start over stdio, e.g. "python server.py"; its tools are '
        "offered (repeatable; needs agentstream[mcp])",
    )  # fmt: skip
    agent.add_argument(
        "--mcp-url", action="append", metavar="URL",
        help="an MCP server over streamable HTTP; its tools are offered (repeatable)",
    )  # fmt: skip
    agent.add_argument("--system", metavar="TEXT", help="system instructions")
    agent.add_argument(
        "--early", action="store_true",
        help="start tools made with early=True as soon as their call is complete, "
        "while the response still streams",
    )  # fmt: skip
    agent.add_argument(
        "--max-steps", type=_positive, default=10, metavar="N",
        help="requests to the model per turn at most (default: 10)",
    )  # fmt: skip
    agent.add_argument(
        "--approve", choices=("ask", "yes", "no"), default="ask",
        help="tools that need approval: ask on the terminal (default; with no terminal on "
        "stdin, deny), approve all, or deny all",
    )  # fmt: skip
    session = parser.add_argument_group("sessions")
    session.add_argument(
        "--session", metavar="FILE",
        help="keep the chat in this SQLite file across invocations (and after a crash)",
    )  # fmt: skip
    session.add_argument(
        "--resume", action="store_true",
        help="with --session: first continue the session's unfinished run (paused for "
        "approval, or cut short by a crash)",
    )  # fmt: skip
    output = parser.add_argument_group("typed output (the answer is validated JSON)")
    output.add_argument(
        "--output-schema", metavar="FILE",
        help="a JSON schema file the answer must fit; the validated JSON is printed",
    )  # fmt: skip
    output.add_argument(
        "--output", metavar="MODULE:TYPE",
        help="a Python type the answer must fit (a module or file.py, a colon, a name)",
    )  # fmt: skip
    output.add_argument(
        "--output-mode", choices=("auto", "response_format", "tool"), default="auto",
        help="ask with response_format, a final-answer tool, or auto (default)",
    )  # fmt: skip
    _add_pace(parser, 0.35, 60)


def _add_replay(commands: Any) -> None:
    replay_parser = commands.add_parser(
        "replay",
        allow_abbrev=False,
        help="assemble a recorded stream and print the result as JSON",
        description=(
            "Feed a recorded stream to the assembler and print the result as one JSON "
            "document: choices, usage and errors for Chat Completions; status, output, "
            "usage and errors for the Responses API (told by its `response.*` events). "
            "FILE holds JSON lines of chunks or events, or a raw SSE body."
        ),
    )
    replay_parser.add_argument("file", metavar="FILE")
    replay_parser.add_argument(
        "--events", action="store_true", help="print every event as a JSON line instead"
    )


def _add_serve_model(commands: Any) -> None:
    serve_parser = commands.add_parser(
        "serve-model",
        allow_abbrev=False,
        help="serve the offline demo model over HTTP until Ctrl-C",
        description=(
            "Serve the offline demo model on an OpenAI-compatible HTTP endpoint, so any "
            "client can use it: set OPENAI_BASE_URL to the URL it prints."
        ),
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    serve_parser.add_argument(
        "--port", type=_port, default=8000, help="default: 8000; 0 picks a free port"
    )
    _add_pace(serve_parser, 0.35, 60)


def _add_load_test(commands: Any) -> None:
    load_parser = commands.add_parser(
        "load-test",
        allow_abbrev=False,
        help="many concurrent runs against the offline model, with faults; check the promises",
        description=(
            "Start RUNS agent runs at once in this process against the offline model on "
            "loopback, with faults in a share of its responses, then report runs completed "
            "and failed, tools run more than once, inconsistent conversations, tasks and "
            "sockets left open, and memory per run. Exit status 1 if a promise was broken."
        ),
    )
    load_parser.add_argument("--runs", type=_positive, default=500, help="default: 500")
    load_parser.add_argument(
        "--fault-rate", type=_share, default=0.08, metavar="SHARE",
        help="share of responses that act out a fault (default: 0.08)",
    )  # fmt: skip
    load_parser.add_argument("--seed", type=int, default=0, help="default: 0")
    load_parser.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="default: asyncio"
    )
    load_parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _sections(text: str) -> list[str]:
    from ..bench._main import SECTIONS

    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"choose among {', '.join(SECTIONS)}, comma-separated, not {text!r}"
        )
    return chosen


def _add_bench(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        allow_abbrev=False,
        help="measure agentstream against the openai SDK and a bare HTTP loop",
        description=(
            "Benchmark, in one process, on the same streams served on loopback by a child "
            "process: assembling chunks (agentstream, the SDK's ChatCompletionStreamState, "
            "a minimal merge loop); reading whole runs end to end (a bare httpx2 loop, the "
            "openai client with stream=True, an agentstream Agent); K concurrent runs and "
            "the memory of an idle one; 8 parallel I/O-bound tools. Prints medians with "
            "min and max; takes a few minutes (seconds with --quick)."
        ),
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes, to check it works")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument(
        "--reps", type=_positive, metavar="N", help="repetitions (default: 5; 1 with --quick)"
    )
    bench.add_argument(
        "--only", type=_sections, metavar="SECTIONS",
        help="comma-separated among assembly, output, e2e, scale, tools, early (default: all)",
    )  # fmt: skip
    bench.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio",
        help="event loop for the clients (default: asyncio)",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["web"]:  # the web page and API live in their own package
        from ._web import main as web_main

        try:
            return web_main(args_list[1:])
        except AgentStreamError as exc:
            print(f"agentstream web: {exc}", file=sys.stderr)
            return 2
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "replay":
            replay(args.file, sys.stdout, events=args.events)
            return 0
        if args.command == "serve-model":
            return _serve_model(args)
        if args.command == "load-test":
            from ..bench._loadtest import main as load_test

            return load_test(args.runs, args.fault_rate, args.seed, args.json, args.backend)
        if args.command == "bench":
            return _bench(args)
        return _demo(args, os.environ)
    except AgentStreamError as exc:
        name = f"agentstream {args.command}" if args.command else "error"
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _serve_model(args: argparse.Namespace) -> int:
    from ._demo import serve

    pace = args.tps or None
    run = functools.partial(
        serve, host=args.host, port=args.port, ttft=args.ttft, tokens_per_second=pace
    )
    try:
        anyio.run(functools.partial(run, out=sys.stdout))
    except OSError as exc:
        print(
            f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..bench._main import SECTIONS, BenchOptions, bench_command

    options = BenchOptions(
        quick=args.quick, reps=args.reps, sections=args.only or SECTIONS, backend=args.backend
    )
    return bench_command(options, as_json=args.json)


def _demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
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
    from ._output import load_output

    tools = _tools(args)
    if args.resume and not args.session:
        raise SetupError("--resume continues a session: give --session FILE too")
    servers = _mcp_servers(args)
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
    terminal = (
        not args.no_color
        and not environ.get("NO_COLOR")
        and environ.get("TERM") != "dumb"
        and sys.stdout.isatty()
    )
    sink: EventSink
    if args.json:
        sink = JsonRenderer(sys.stdout, redact=connection.redact)
    else:
        sink = Renderer(sys.stdout, terminal=terminal)
        print(banner(connection, tools, chat=args.prompt is None), file=sys.stderr)
    return run_demo(
        agent,
        connection,
        sink,
        prompt=args.prompt,
        live=terminal and not args.json,
        stdout=sys.stdout,
        stderr=sys.stderr,
        session=Session(SQLiteStore(args.session), "cli") if args.session else None,
        resume=args.resume,
        servers=servers,
    )


def _mcp_servers(args: argparse.Namespace) -> list[Any]:
    """The MCP servers of `--mcp` and `--mcp-url`, not yet connected (each turn connects)."""
    if not args.mcp and not args.mcp_url:
        return []
    try:
        from ..mcp import MCPServerHTTP, MCPServerStdio
    except ImportError as exc:
        message = f"--mcp needs the MCP extra: pip install 'agentstream[mcp]' ({exc})"
        raise SetupError(message) from None
    servers: list[Any] = []
    for command in args.mcp or ():
        words = shlex.split(command)
        if not words:
            raise SetupError("--mcp needs a command, e.g. --mcp 'python server.py'")
        servers.append(MCPServerStdio(words[0], words[1:]))
    servers.extend(MCPServerHTTP(url) for url in args.mcp_url or ())
    return servers


def _tools(args: argparse.Namespace) -> list[Tool]:
    if args.tools:
        return load_tools(args.tools)
    folder = demo_tools_folder()
    if args.no_default_tools or folder is None:
        return []
    try:
        return load_default_tools(folder)
    except SetupError as exc:
        print(f"warning: running without the repository's tools: {exc}", file=sys.stderr)
        return []
