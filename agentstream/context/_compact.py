"""A conversation's compacted view for one request (no I/O).

The run's conversation is never changed: each request is built from a view in which
the oldest tool results are shortened, then dropped, and the oldest turns replaced by
a summary. What has been compacted stays so (`Trim`), so requests keep a stable
start (kind to prompt caches) and a compaction is reported once, when it grows.

The conversation is read as groups that move together: an assistant message with
its tool results, or one other message. Never touched: the leading instructions
(system or developer messages), the first and the last user message (the task; kept,
above the summary, when the turns around them are summarised) and the last group (the
step just finished, whose results the model has not seen yet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Compaction", "Summary", "Trim", "compact", "content_text", "summary_message"]

_HEAD_ROLES = frozenset({"system", "developer"})
_NOTE = "to keep the conversation within its token budget]"
SUMMARY_HEADER = "[Summary of the earlier conversation, written to keep it within its token budget]"

Weigh = Callable[[Mapping[str, Any]], int]
"""The tokens one message costs (the run's calibrated counter)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The summary standing for `messages[head:end]` (less the user messages kept)."""

    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Trim:
    """How far compaction has gone: tool results before `shorten_before` (an index in
    the conversation) are shortened, before `drop_before` dropped; `summary`, if any."""

    shorten_before: int = 0
    drop_before: int = 0
    summary: Summary | None = None


@dataclass(frozen=True, slots=True)
class Compaction:
    """The view of a conversation for one request, and what changed to make it."""

    view: list[dict[str, Any]]
    trim: Trim
    tokens_before: int
    """The estimate of the view as the last trim left it."""
    tokens_after: int
    shortened: int = 0
    dropped: int = 0
    summarise: tuple[int, int] | None = None
    """Messages `[start, end)` the model should summarise to get within the target."""

    @property
    def changed(self) -> bool:
        return bool(self.shortened or self.dropped)


def content_text(content: Any) -> str:
    """A message's content as text (a string, or the text of its parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def summary_message(text: str) -> dict[str, Any]:
    """The message that stands for the summarised turns in a request."""
    return {"role": "user", "content": f"{SUMMARY_HEADER}\n{text}"}


def _layout(messages: list[dict[str, Any]]) -> tuple[int, int, frozenset[int]]:
    """`(head, current, kept)`: where the instructions end, where the last group starts,
    and the user messages never summarised (the first and the last)."""
    head = 0
    while head < len(messages) and messages[head].get("role") in _HEAD_ROLES:
        head += 1
    current = len(messages)
    while current > head:
        current -= 1
        role = messages[current].get("role")
        if role != "tool":
            if role != "assistant" and current + 1 < len(messages):
                current += 1  # a tool result without its call: keep the group it ends
            break
    users = [i for i in range(head, len(messages)) if messages[i].get("role") == "user"]
    kept = frozenset({users[0], users[-1]}) if users else frozenset()
    return head, current, kept


def _shortened(message: dict[str, Any], keep: int) -> dict[str, Any] | None:
    text = content_text(message.get("content"))
    if len(text) <= keep + 80:  # the note costs about that much: nothing to gain
        return None
    cut = len(text) - keep
    note = f"[agentstream: the last {cut} characters of this tool result were cut {_NOTE}"
    return {**message, "content": f"{text[:keep]}\n{note}"}


def _dropped(message: dict[str, Any]) -> dict[str, Any]:
    size = len(content_text(message.get("content")))
    return {
        **message,
        "content": f"[agentstream: this tool result ({size} characters) was dropped {_NOTE}",
    }


class _View:
    """The view under construction: entries with the index of the message each came from."""

    def __init__(
        self,
        messages: list[dict[str, Any]],
        trim: Trim,
        weigh: Weigh,
        made: dict[tuple[int, str], dict[str, Any] | None],
    ) -> None:
        self.messages = messages
        self.weigh = weigh
        self.made = made
        self.head, self.current, self.kept = _layout(messages)
        summary = trim.summary
        self.start = max(self.head, summary.end if summary is not None else 0)
        self.entries: list[tuple[int | None, dict[str, Any]]] = [
            (i, messages[i]) for i in range(self.head)
        ]
        if summary is not None:
            self.entries += [(i, messages[i]) for i in sorted(self.kept) if i < summary.end]
            self.entries.append((None, summary_message(summary.text)))
        self.first = len(self.entries)  # where the zone that may be compacted begins
        self.entries += [(i, messages[i]) for i in range(self.start, len(messages))]
        self.tokens = sum(weigh(message) for _, message in self.entries)
        self.states: dict[int, str] = {}

    def tools(self) -> list[int]:
        """Positions in `entries` of the tool results that may be compacted, oldest first."""
        return [
            position
            for position in range(self.first, len(self.entries))
            if (index := self.entries[position][0]) is not None
            and index < self.current
            and self.messages[index].get("role") == "tool"
        ]

    def set(self, position: int, state: str, keep: int) -> bool:
        """Shorten or drop the result at `position`; False when that would gain nothing."""
        index, message = self.entries[position]
        assert index is not None
        original = self.messages[index]
        key = (index, state)
        if key in self.made:
            new = self.made[key]
        else:  # made once per result and kept: each step's work stays within its own bytes
            new = _dropped(original) if state == "dropped" else _shortened(original, keep)
            self.made[key] = new
        if new is None:
            return False
        self.tokens += self.weigh(new) - self.weigh(message)
        self.entries[position] = (index, new)
        self.states[index] = state
        return True


def compact(
    messages: list[dict[str, Any]],
    trim: Trim,
    weigh: Weigh,
    *,
    overhead: int,
    limit: int,
    target: int,
    keep_chars: int,
    summarise: bool,
    made: dict[tuple[int, str], dict[str, Any] | None] | None = None,
) -> Compaction:
    """The view of `messages` for the next request under `trim`, compacted further (a
    new trim) when its estimate (`overhead` plus each message's weight) passes `limit`,
    down to `target` where it can (and marks turns to summarise if it cannot).

    `made` keeps the shortened and dropped results between calls (by index and state).
    """
    view = _View(messages, trim, weigh, {} if made is None else made)
    for position in view.tools():
        index = view.entries[position][0]
        assert index is not None
        if index < trim.drop_before:
            view.set(position, "dropped", keep_chars)
        elif index < trim.shorten_before:
            view.set(position, "shortened", keep_chars)
    before = overhead + view.tokens
    if before <= limit:
        return Compaction(_messages(view), trim, before, before)
    shortened, dropped, trim = _trim(view, trim, overhead, target, keep_chars)
    after = overhead + view.tokens
    # A summary costs a request: it makes room for several steps, down to half the target.
    span = _span(view, after - target // 2) if summarise and after > target else None
    return Compaction(_messages(view), trim, before, after, shortened, dropped, span)


def _trim(
    view: _View, trim: Trim, overhead: int, target: int, keep_chars: int
) -> tuple[int, int, Trim]:
    """Shorten, then drop, the oldest tool results until the view is within `target`.

    Each result counts once, as what became of it (one shortened, then dropped, is dropped).
    """
    counts = {"shortened": 0, "dropped": 0}
    fresh: set[int] = set()  # shortened by this call
    marks = {"shortened": trim.shorten_before, "dropped": trim.drop_before}
    for state in ("shortened", "dropped"):
        for position in view.tools():
            if overhead + view.tokens <= target:
                break
            index = view.entries[position][0]
            assert index is not None
            if view.states.get(index) == "dropped" or view.states.get(index) == state:
                continue
            if view.set(position, state, keep_chars):
                counts[state] += 1
                if state == "shortened":
                    fresh.add(index)
                elif index in fresh:
                    counts["shortened"] -= 1
            marks[state] = max(marks[state], index + 1)
    new = replace(trim, shorten_before=marks["shortened"], drop_before=marks["dropped"])
    return counts["shortened"], counts["dropped"], new


def _span(view: _View, excess: int) -> tuple[int, int] | None:
    """The oldest whole groups of the zone whose summary would remove `excess` tokens
    (a summary costs some, reckoned here as an eighth of what it replaces)."""
    end = view.start
    removed = 0
    weights = {index: view.weigh(message) for index, message in view.entries if index is not None}
    index = view.start
    while index < view.current and removed * 7 // 8 < excess:
        group_end = index + 1
        if view.messages[index].get("role") == "assistant":
            while group_end < view.current and view.messages[group_end].get("role") == "tool":
                group_end += 1
        removed += sum(weights.get(i, 0) for i in range(index, group_end) if i not in view.kept)
        index = end = group_end
    return (view.start, end) if removed else None  # nothing but kept messages: no summary


def _messages(view: _View) -> list[dict[str, Any]]:
    return [message for _, message in view.entries]
