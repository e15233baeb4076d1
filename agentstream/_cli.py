"""The command line: `python -m agentstream [replay FILE | ...]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._exceptions import AgentStreamError
from ._replay import replay

__all__ = ["main"]

_DESCRIPTION = """\
agentstream: a runtime for tool-calling agents over streamed Chat Completions.

Subcommands:
  replay FILE   assemble a recorded stream and print the message it makes
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agentstream",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    replay_parser = commands.add_parser(
        "replay",
        help="assemble a recorded stream and print the result as JSON",
        description=(
            "Feed a recorded Chat Completions stream to the assembler and print the "
            "assembled choices, usage and errors as one JSON document. FILE holds JSON "
            "lines of chunks, or a raw SSE body with `data:` lines."
        ),
    )
    replay_parser.add_argument("file", metavar="FILE")
    replay_parser.add_argument(
        "--events", action="store_true", help="print every event as a JSON line instead"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "replay":
            replay(args.file, sys.stdout, events=args.events)
            return 0
    except AgentStreamError as exc:
        print(f"agentstream {args.command}: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0
