"""The fields of a streamed assistant message that go back to the server as they came.

Servers that think before calling tools want their reasoning back on the next request,
under the name it came in and unaltered: `reasoning_content` (DeepSeek, Kimi, Z.ai,
llama.cpp, xAI), `reasoning` (vLLM-style servers, Groq, OpenRouter), `reasoning_details`
(OpenRouter and Vercel's typed blocks, with signatures and encrypted data), and keys of
their own such as Gemini's `extra_content` (thought signatures), on a tool call or on the
message. Servers that know none of these refuse them, so nothing is added or renamed:
only what the stream held goes back. See docs/round-trips.md.

Unknown keys keep their first non-empty value; they are bounded in number and depth so
that a hostile stream gets a `StreamError`, not unbounded memory or a `RecursionError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import StreamError
from .._redact import clip

__all__ = [
    "CALL_KEYS",
    "DELTA_KEYS",
    "Details",
    "keep_extra",
]

CALL_KEYS = frozenset({"index", "id", "type", "function"})
"""The keys of a tool-call fragment the assembler reads itself; any other is kept."""

DELTA_KEYS = frozenset(
    {
        "role",
        "content",
        "refusal",
        "tool_calls",
        "reasoning_content",
        "reasoning",
        "reasoning_details",
    }
)
"""The keys of a delta the assembler reads itself; any other is kept, unless below."""

NOT_MESSAGE = frozenset({"channel", "provider_metadata", "annotations", "audio", "function_call"})
"""Delta keys that describe the chunk or the response, not the message: Groq's per-chunk
`channel` tag, a gateway's `provider_metadata` (usage, routing), and OpenAI fields whose
request form differs from the response's. Strict servers refuse them back."""

MAX_EXTRA_KEYS = 32
"""Unknown keys kept per message or per tool call."""
MAX_DEPTH = 32
"""How deep an unknown value (or a reasoning block) may nest."""
MAX_BLOCKS = 256
"""`reasoning_details` blocks kept per message."""

_TEXT_KEYS = ("text", "summary", "data")  # the block keys that stream in pieces


def malformed(what: str, value: Any) -> StreamError:
    """The error for a field that breaks a bound (the value is shown short, if at all)."""
    shown = value if isinstance(value, str) else type(value).__name__
    return StreamError(f"malformed chunk: {what}: {clip(shown, 80)}")


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, dict)) and not value)


def _check_depth(value: Any, what: str) -> None:
    """Refuse a value nested deeper than `MAX_DEPTH` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise malformed(f"{what} nests deeper than {MAX_DEPTH} levels", "...")
        stack.extend((child, depth + 1) for child in children)


def keep_extra(extra: dict[str, Any] | None, key: str, value: Any) -> dict[str, Any] | None:
    """`extra` with `key` kept: its first value, replaced once by a first non-empty one."""
    if value is None:
        return extra
    if extra is None:
        extra = {}
    elif key in extra:
        if _empty(extra[key]) and not _empty(value):
            _check_depth(value, f"the field {key!r:.40}")
            extra[key] = value
        return extra
    if len(extra) >= MAX_EXTRA_KEYS:
        raise malformed(f"more than {MAX_EXTRA_KEYS} unknown fields", key)
    _check_depth(value, f"the field {key!r:.40}")
    extra[key] = value
    return extra


def message_extras(extra: dict[str, Any] | None, delta: Mapping[str, Any]) -> dict[str, Any] | None:
    """`extra` with the unknown keys of a message delta kept."""
    for key, value in delta.items():
        if key not in DELTA_KEYS and key not in NOT_MESSAGE:
            if not isinstance(key, str):
                raise malformed("a delta key is not a string", key)
            extra = keep_extra(extra, key, value)
    return extra


def call_extras(extra: dict[str, Any] | None, fragment: Mapping[str, Any]) -> dict[str, Any] | None:
    """`extra` with the unknown keys of a tool-call fragment kept."""
    for key, value in fragment.items():
        if key not in CALL_KEYS:
            if not isinstance(key, str):
                raise malformed("a tool call key is not a string", key)
            extra = keep_extra(extra, key, value)
    return extra


class Details:
    """`reasoning_details` merged by block: fragments of one block share `index` and `type`.

    `text`, `summary` and `data` are concatenated; every other key keeps its first
    non-empty value; blocks stay in first-seen order. Linear in the bytes fed.
    """

    __slots__ = ("_blocks", "_by_key")

    def __init__(self) -> None:
        # Each block: its fields in first-seen order, and the pieces of its text keys.
        self._blocks: list[tuple[dict[str, Any], dict[str, list[str]]]] = []
        self._by_key: dict[tuple[Any, Any], tuple[dict[str, Any], dict[str, list[str]]]] = {}

    def feed(self, details: list[Any]) -> None:
        for block in details:
            if not isinstance(block, Mapping):
                raise malformed("a reasoning_details block is not an object", block)
            index, kind = block.get("index"), block.get("type")
            if not isinstance(index, (int, type(None))) or not isinstance(kind, (str, type(None))):
                raise malformed("a reasoning_details block has a bad index or type", block)
            key = (index, kind)
            merged = self._by_key.get(key)
            if merged is None:
                if len(self._blocks) >= MAX_BLOCKS:
                    raise malformed(f"more than {MAX_BLOCKS} reasoning_details blocks", kind)
                merged = self._by_key[key] = ({}, {})
                self._blocks.append(merged)
            self._merge(merged, block)

    @staticmethod
    def _merge(
        merged: tuple[dict[str, Any], dict[str, list[str]]], block: Mapping[str, Any]
    ) -> None:
        fields, pieces = merged
        for name, value in block.items():
            if name in _TEXT_KEYS and type(value) is str:
                texts = pieces.get(name)
                if texts is None:
                    pieces[name] = [value]
                    fields.setdefault(name, None)
                else:
                    texts.append(value)
            elif name not in fields:
                if len(fields) >= MAX_EXTRA_KEYS:
                    raise malformed(f"a reasoning block has more than {MAX_EXTRA_KEYS} keys", name)
                _check_depth(value, "a reasoning_details block")
                fields[name] = value
            elif name not in pieces and _empty(fields[name]) and not _empty(value):
                _check_depth(value, "a reasoning_details block")
                fields[name] = value

    def result(self) -> list[dict[str, Any]]:
        """The merged blocks, as they go back."""
        return [
            {
                name: "".join(pieces[name]) if name in pieces else value
                for name, value in fields.items()
            }
            for fields, pieces in self._blocks
        ]
