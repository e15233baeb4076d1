"""The command line's argument parser: flags named as flags, types said in plain words.

argparse alone reports `--promt "hi"` as an invalid subcommand `hi` (the mistyped flag is
set aside, and its value is taken for a command) and a bad number as `invalid _positive
value`. `Parser` knows every flag it and its subcommands take, so a flag it does not know
is named, with the closest known one suggested; each error is one line.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = [
    "Parser",
    "count",
    "integer",
    "port",
    "positive",
    "seconds",
    "share",
]


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` that keeps a list of its flags, to name the unknown ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # a mistyped flag is never another one
        self.flags: dict[str, bool] = {}
        """Each flag, and whether it takes a value."""
        self.commands: dict[str, Parser] = {}
        """The subcommands' parsers, by name."""
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.note(action)
        return action

    def note(self, action: argparse.Action) -> None:
        """Remember a flag added to one of this parser's groups."""
        takes_value = action.nargs != 0
        for name in action.option_strings:
            self.flags[name] = takes_value

    def group(self, title: str, description: str | None = None) -> Group:
        """An argument group whose flags this parser knows."""
        return Group(self, self.add_argument_group(title, description))

    def command(self, commands: Any, name: str, **kwargs: Any) -> Parser:
        """Add the subcommand `name` (its usage line its own) to `commands`."""
        kwargs.setdefault("prog", f"{self.prog} {name}")
        sub: Parser = commands.add_parser(name, **kwargs)
        self.commands[name] = sub
        return sub

    def error(self, message: str) -> NoReturn:
        """One line on stderr, then exit status 2 (bad usage)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """`parse_args`, after naming any flag no parser here knows."""
        problem = self.unknown(list(argv))
        if problem is not None:
            self.error(problem)
        return self.parse_args(argv)

    def unknown(self, argv: list[str]) -> str | None:
        """What is wrong with a flag or word of `argv` that no parser would take, if any."""
        current = self
        position = 0
        while position < len(argv):
            token = argv[position]
            position += 1
            if token == "--":
                return None
            if token.startswith("-") and len(token) > 1 and not _is_number(token):
                name = token.partition("=")[0]
                if name not in current.flags and name[:2] in current.flags and name[1] != "-":
                    continue  # a short flag with its value attached: -pTEXT
                if name not in current.flags:
                    return _unknown_flag(name, current)
                if current.flags[name] and "=" not in token:
                    position += 1  # its value, whatever it looks like
            elif current is self and self.commands:
                if token not in self.commands:
                    return _unknown_word(token, self)
                current = self.commands[token]
                if not current.flags.keys() - {"-h", "--help"}:
                    return None  # a command that parses its own flags (web)
        return None


class Group:
    """An argument group of a `Parser` (its flags noted in the parser)."""

    def __init__(self, parser: Parser, group: Any) -> None:
        self._parser = parser
        self._group = group

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action: argparse.Action = self._group.add_argument(*args, **kwargs)
        self._parser.note(action)
        return action


def _unknown_flag(name: str, parser: Parser) -> str:
    owners = [cmd for cmd, sub in parser.commands.items() if name in sub.flags]
    if owners and name not in ("-h", "--help"):
        return f"unknown flag {name} here: it belongs to `{owners[0]}` (put it after the command)"
    close = difflib.get_close_matches(name, [f for f in parser.flags if f.startswith("--")], n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown flag {name}{hint}"


def _unknown_word(word: str, parser: Parser) -> str:
    names = ", ".join(parser.commands)
    close = difflib.get_close_matches(word, list(parser.commands), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"unexpected {word!r}: {hint}the subcommands are {names}; "
        "a prompt goes after -p (-p 'your question')"
    )


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# --- types of values, each error in plain words ----------------------------------------------


def _number(text: str, kind: type[int] | type[float], words: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {words}, not {text!r}") from None


def seconds(text: str) -> float:
    """A duration in seconds, 0 or more."""
    value: float = _number(text, float, "a number of seconds >= 0")
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return value


def integer(text: str) -> int:
    """Any whole number."""
    value: int = _number(text, int, "a whole number")
    return value


def positive(text: str) -> int:
    """A whole number from 1."""
    value: int = _number(text, int, "a whole number >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text!r}")
    return value


def count(text: str) -> int:
    """A whole number from 0."""
    value: int = _number(text, int, "a whole number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text!r}")
    return value


def share(text: str) -> float:
    """A share from 0 to 1."""
    value: float = _number(text, float, "a share from 0 to 1")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1, not {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port number."""
    value: int = _number(text, int, "a TCP port (0 to 65535)")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (0 to 65535), not {text!r}")
    return value
