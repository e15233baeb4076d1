"""The command line: `python -m agentstream [-p PROMPT] [replay FILE | serve-model | bench]`."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from .._exceptions import AgentStreamError
from ._args import Parser, count, integer, port, positive, seconds, share
from ._replay import replay
from ._toolflags import add_tool_flags

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
       python -m agentstream web [--host HOST] [--port PORT] [--tools SPEC] [options]"""

_EPILOG = """\
environment (as the openai SDK reads them; flags win):
  OPENAI_API_KEY    API key of the provider (prefer this to --api-key, which `ps` shows)
  OPENAI_BASE_URL   base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
  OPENAI_MODEL      model to use when not offline (default: gpt-4o-mini)
  NO_COLOR          any value turns colours and live redraw off

exit status:
  0    done
  1    the run failed (the model, a tool server), or load-test found a broken promise
  2    bad usage or setup: an unknown flag, a bad value, a file that cannot be read,
       a port in use, a session with nothing to resume or an unfinished run
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (| head)

scripting: with --output-schema or --output and stdout not a terminal (or --json),
stdout holds only the validated answer as one JSON value; progress goes to stderr
(as text, or as event lines with --json).

examples:
  python -m agentstream -p "What's the weather in Paris and Tokyo?"
  python -m agentstream --json -p "What is 17 * 23?" | jq .type
  python -m agentstream serve-model --port 8000
  OPENAI_API_KEY=sk-... python -m agentstream --model gpt-4o-mini --tools my_tools.py
"""


def _add_pace(parser: Parser, ttft: float, tps: float) -> None:
    pace = parser.group("offline model pace")
    pace.add_argument(
        "--ttft", type=seconds, default=ttft, metavar="SECONDS",
        help=f"seconds before the first token (default: {ttft})",
    )  # fmt: skip
    pace.add_argument(
        "--tps", type=seconds, default=tps, metavar="N",
        help=f"tokens per second, 0 for flat out (default: {tps:g})",
    )  # fmt: skip


def _parser() -> Parser:
    parser = Parser(
        prog="python -m agentstream",
        usage=_USAGE,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_options(parser)
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        title="subcommands",
        description="`python -m agentstream COMMAND --help` tells more.",
    )
    _add_replay(parser, commands)
    _add_serve_model(parser, commands)
    _add_load_test(parser, commands)
    _add_bench(parser, commands)
    # `web` parses its own flags (agentstream.cli._web); listed here for the help.
    parser.command(
        commands, "web", add_help=False, help="serve the chat page and its streaming API"
    )
    return parser


def _add_run_options(parser: Parser) -> None:
    parser.add_argument("-p", "--prompt", metavar="TEXT", help="run one turn and exit")
    parser.add_argument(
        "--json", action="store_true", help="print every event as one JSON line, for scripts"
    )
    parser.add_argument(
        "--no-color", action="store_true", help="plain text: no colours, no live redraw"
    )
    connection = parser.group("model and provider")
    connection.add_argument("--model", help="model name (see OPENAI_MODEL)")
    connection.add_argument("--base-url", metavar="URL", help="see OPENAI_BASE_URL")
    connection.add_argument("--api-key", metavar="KEY", help="see OPENAI_API_KEY")
    connection.add_argument(
        "--api", choices=("chat", "responses"), default="chat",
        help="the wire: Chat Completions (default) or the Responses API (POST /responses)",
    )  # fmt: skip
    connection.add_argument(
        "--max-retries", type=count, default=2, metavar="N",
        help="retries of a failed step, before or after partial output (default: 2)",
    )  # fmt: skip
    agent = parser.group("agent")
    add_tool_flags(agent, defaults="the repository's tools/")
    agent.add_argument("--system", metavar="TEXT", help="system instructions")
    agent.add_argument(
        "--early", action="store_true",
        help="start tools made with early=True as soon as their call is complete, "
        "while the response still streams",
    )  # fmt: skip
    agent.add_argument(
        "--max-steps", type=positive, default=10, metavar="N",
        help="requests to the model per turn at most (default: 10)",
    )  # fmt: skip
    agent.add_argument(
        "--approve", choices=("ask", "yes", "no"), default="ask",
        help="tools that need approval: ask on the terminal (default; with no terminal on "
        "stdin, deny), approve all, or deny all",
    )  # fmt: skip
    session = parser.group("sessions")
    session.add_argument(
        "--session", metavar="FILE",
        help="keep the chat in this SQLite file across invocations (and after a crash)",
    )  # fmt: skip
    session.add_argument(
        "--resume", action="store_true",
        help="with --session: first continue the session's unfinished run (paused for "
        "approval, or cut short by a crash); an error if there is none",
    )  # fmt: skip
    session.add_argument(
        "--forget", action="store_true",
        help="with --session: drop the session's unfinished run (the conversation before "
        "it is kept), then go on",
    )  # fmt: skip
    output = parser.group("typed output (the answer is validated JSON)")
    output.add_argument(
        "--output-schema", metavar="FILE",
        help="a JSON schema file the answer must fit; the validated JSON is printed "
        "(alone on stdout when stdout is not a terminal, or with --json)",
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


def _add_replay(parser: Parser, commands: Any) -> None:
    replay_parser = parser.command(
        commands,
        "replay",
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


def _add_serve_model(parser: Parser, commands: Any) -> None:
    serve_parser = parser.command(
        commands,
        "serve-model",
        help="serve the offline demo model over HTTP until Ctrl-C",
        description=(
            "Serve the offline demo model on an OpenAI-compatible HTTP endpoint, so any "
            "client can use it: set OPENAI_BASE_URL to the URL it prints."
        ),
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    serve_parser.add_argument(
        "--port", type=port, default=8000, help="default: 8000; 0 picks a free port"
    )
    _add_pace(serve_parser, 0.35, 60)


def _add_load_test(parser: Parser, commands: Any) -> None:
    load_parser = parser.command(
        commands,
        "load-test",
        help="many concurrent runs against the offline model, with faults; check the promises",
        description=(
            "Start RUNS agent runs at once in this process against the offline model on "
            "loopback, with faults in a share of its responses, then report runs completed "
            "and failed, tools run more than once, inconsistent conversations, tasks and "
            "sockets left open, and memory per run. Exit status 1 if a promise was broken."
        ),
    )
    load_parser.add_argument("--runs", type=positive, default=500, help="default: 500")
    load_parser.add_argument(
        "--fault-rate", type=share, default=0.08, metavar="SHARE",
        help="share of responses that act out a fault (default: 0.08)",
    )  # fmt: skip
    load_parser.add_argument("--seed", type=integer, default=0, help="default: 0")
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


def _add_bench(parser: Parser, commands: Any) -> None:
    bench = parser.command(
        commands,
        "bench",
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
        "--reps", type=positive, metavar="N", help="repetitions (default: 5; 1 with --quick)"
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
    args = parser.parse(args_list)
    if args.command == "web":
        parser.error("web takes its own flags, after it: python -m agentstream web [flags]")
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
        from ._chat import chat

        return chat(args, os.environ)
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
