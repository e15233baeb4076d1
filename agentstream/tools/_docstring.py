"""Read a tool's description and parameter descriptions out of its docstring.

Understands Google (`Args:` / `Arguments:`), Sphinx (`:param x:`) and NumPy
(`Parameters` underlined with dashes) styles. Pure string work.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["Docstring", "parse_docstring"]

_GOOGLE_ARGS = re.compile(
    r"(?:Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*", re.IGNORECASE
)
# Any Google section header ends the summary paragraph, even without a blank line before it.
_GOOGLE_HEADER = re.compile(
    r"(?:Args|Arguments|Attributes|Examples?|Keyword Args|Keyword Arguments|Methods|Notes?"
    r"|Other Parameters|Parameters|Params|Returns?|Raises?|References|See Also|Todo"
    r"|Warnings?|Warns|Yields?):\s*"
)
_GOOGLE_ENTRY = re.compile(r"\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:(?P<text>.*)")
_SPHINX_FIELD = re.compile(
    r":(?:param|parameter|arg|argument|key|keyword)\s+(?P<spec>[^:]+?)\s*:(?P<text>.*)"
)
_NUMPY_RULE = re.compile(r"-{3,}\s*")
_NUMPY_PARAMS = re.compile(r"(?:Parameters|Other Parameters)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Docstring:
    """What a docstring says about a function."""

    description: str
    """The first paragraph, whitespace-normalised."""
    params: dict[str, str] = field(default_factory=dict)
    """Parameter name to its description, whitespace-normalised."""


def parse_docstring(doc: str | None) -> Docstring:
    """Split `doc` into its summary paragraph and per-parameter descriptions."""
    if not doc:
        return Docstring("")
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    # Later styles only fill gaps: a docstring normally uses one style throughout.
    for parse in (_google_params, _sphinx_params, _numpy_params):
        for name, text in parse(lines).items():
            params.setdefault(name, text)
    return Docstring(_summary(lines), params)


def _normalise(parts: list[str]) -> str:
    return " ".join(" ".join(parts).split())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_section_start(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if _GOOGLE_HEADER.fullmatch(line) or _SPHINX_FIELD.fullmatch(line):
        return True
    return i + 1 < len(lines) and bool(_NUMPY_RULE.fullmatch(lines[i + 1].strip()))


def _summary(lines: list[str]) -> str:
    parts: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip() or _is_section_start(lines, i):
            break
        parts.append(line)
    return _normalise(parts)


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if not _GOOGLE_ARGS.fullmatch(lines[i].strip()):
            i += 1
            continue
        header_indent = _indent(lines[i])
        entry_indent: int | None = None
        name: str | None = None
        current: list[str] = []
        i += 1
        # The section runs until the first non-blank line indented no deeper than its header.
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > header_indent):
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            entry_indent = _indent(line) if entry_indent is None else entry_indent
            match = _GOOGLE_ENTRY.fullmatch(line.strip())
            if match and _indent(line) <= entry_indent:
                name, current = match["name"], [match["text"]]
            elif name is not None:
                current.append(line)
            if name is not None:
                params[name] = _normalise(current)
    return params


def _sphinx_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    current: list[str] | None = None
    name = ""
    field_indent = 0
    for line in lines:
        stripped = line.strip()
        match = _SPHINX_FIELD.fullmatch(stripped)
        if match:
            # `:param int x:` names the type first; the parameter is the last word.
            name = match["spec"].split()[-1].lstrip("*")
            current = [match["text"]]
            field_indent = _indent(line)
        elif current is not None and stripped and _indent(line) > field_indent:
            current.append(stripped)
        else:
            current = None
            continue
        params[name] = _normalise(current)
    return params


def _numpy_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    i = 0
    while i + 1 < len(lines):
        if not (
            _NUMPY_PARAMS.fullmatch(lines[i].strip())
            and _NUMPY_RULE.fullmatch(lines[i + 1].strip())
        ):
            i += 1
            continue
        header_indent = _indent(lines[i])
        names: list[str] = []
        current: list[str] = []
        i += 2
        while i < len(lines) and not _is_numpy_header(lines, i):
            line = lines[i]
            if line.strip() and _indent(line) <= header_indent:
                # `x, y : int` documents two parameters at once.
                spec = line.split(" : ", 1)[0].split(":", 1)[0]
                names = [n.strip().lstrip("*") for n in spec.split(",") if n.strip()]
                current = []
            elif names:
                current.append(line)
            for n in names:
                params[n] = _normalise(current)
            i += 1
    return params


def _is_numpy_header(lines: list[str], i: int) -> bool:
    return i + 1 < len(lines) and bool(_NUMPY_RULE.fullmatch(lines[i + 1].strip()))
