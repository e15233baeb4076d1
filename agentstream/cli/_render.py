"""Show a run's events as they happen: text for a person, or JSON lines for a program.

A renderer is fed one event at a time and writes to the text stream it was given; it
does no other I/O and reads the time only from the clock it is handed, so a scripted
sequence of events always renders to the same text. `Renderer(terminal=True)` colours
its output and redraws its bottom lines in place (streaming tool calls, running tools,
the wait for a first token); `terminal=False` writes plain lines with no escape codes.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol, TextIO

from pydantic_core import to_json

from .._events import (
    ApprovalRequested,
    Event,
    FallbackUsed,
    MaxStepsReached,
    OutputInvalid,
    OutputReady,
    ReasoningDelta,
    RefusalDelta,
    RunFinished,
    StepFinished,
    StepInterrupted,
    StepStarted,
    TextDelta,
    ToolCallApproved,
    ToolCallDelta,
    ToolCallDenied,
    ToolCallInvalid,
    ToolCallReady,
    ToolCallStarted,
    ToolCancelled,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    UsageLimitReached,
    event_to_dict,
)
from .._usage import Usage

__all__ = ["EventSink", "JsonRenderer", "Renderer"]

_RESET = "\x1b[0m"
_STYLE = {
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
    "name": "\x1b[1;36m",
    "call": "\x1b[36m",
    "ok": "\x1b[32m",
    "bad": "\x1b[31m",
    "warn": "\x1b[33m",
}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_PLAIN_LIMIT = 200  # characters of a tool result shown when nothing says how wide the screen is
# Control characters would move the cursor or inject escapes; tabs and newlines are kept
# in streamed text and flattened where a display must stay on one line.
_CONTROLS: dict[int, str | None] = dict.fromkeys([*range(9), *range(11, 32), 127])
_ONE_LINE: dict[int, str | None] = {**_CONTROLS, 9: " ", 10: " "}
_MEDIA_NOTE = re.compile(r"\[(?:image|file)\b[^\n]*\]")


def _notes_first(output: str) -> str:
    """A result's notes of images and files (media type, size) before its text, so a
    clipped line still shows them."""
    notes = _MEDIA_NOTE.findall(output)
    rest = _MEDIA_NOTE.sub("", output)
    return " ".join([*notes, rest])


Segment = tuple[str, str | None]


class EventSink(Protocol):
    """What the demo feeds a run's events to."""

    def handle(self, event: Event) -> None:
        """Show one event."""

    def tick(self) -> None:
        """Refresh whatever shows elapsed time."""

    def interrupted(self) -> None:
        """The turn was stopped: tidy up the screen (the caller says so on stderr)."""

    def finish(self) -> None:
        """End the turn's output cleanly."""


class JsonRenderer:
    """Every event as one JSON line (`event_to_dict`), for scripts."""

    def __init__(self, out: TextIO, *, redact: Callable[[str], str] = str) -> None:
        self._out = out
        self._redact = redact

    def handle(self, event: Event) -> None:
        line = json.dumps(event_to_dict(event), ensure_ascii=False, default=str)
        self._out.write(self._redact(line) + "\n")
        self._out.flush()

    def tick(self) -> None:
        pass

    def interrupted(self) -> None:
        # The run was stopped by its caller: no event of the run says so; this line does.
        self._out.write(json.dumps({"type": "run_cancelled", "reason": "interrupted"}) + "\n")
        self._out.flush()

    def finish(self) -> None:
        pass


@dataclass(slots=True)
class _Streaming:
    name: str
    raw: str = ""


@dataclass(slots=True)
class _Running:
    name: str
    arguments: str
    started: float
    progress: str = ""  # a bar and status, once the tool has reported progress
    shown: str = ""  # the last progress line written in plain text


class Renderer:
    """A run's events as text for a person, written to `out` as they arrive.

    `terminal=True` adds colour and live redraw (give it `width`, or it asks the
    terminal on each redraw); `unicode` allows glyphs such as a spinner (by default when
    `out` is UTF-8); `clock` measures tool time and the elapsed-time counters.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        terminal: bool = False,
        width: int | None = None,
        unicode: bool | None = None,
        clock: Callable[[], float] = perf_counter,
    ) -> None:
        self._out = out
        self._terminal = terminal
        self._width = width
        self._clock = clock
        if unicode is None:
            unicode = "utf" in (getattr(out, "encoding", None) or "").lower()
        fancy = terminal and unicode
        self._glyph = {
            "call": "→" if fancy else "->",
            "ok": "✓" if fancy else "<-",
            "bad": "✗" if fancy else "<-",
            "sep": " · " if fancy else ", ",
            "more": "…" if fancy else "...",
        }
        self._spinner = _SPINNER if fancy else "-\\|/"
        self._inline: str | None = None  # the kind of streamed text on an unfinished line
        self._drawn = 0  # live lines now on screen, the cursor at the end of the last
        self._waiting: float | None = None
        self._calls: dict[int, _Streaming] = {}
        self._running: dict[str, _Running] = {}
        self._tools: tuple[float, float] | None = None  # this step's first start, last end

    # --- events -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """Show one event."""
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta, ToolCallStarted,
                              ToolCallDelta)):  # fmt: skip
            self._waiting = None
        match event:
            case StepStarted():
                self._waiting = self._clock()
                self._tools = None
                self._redraw()
            case TextDelta(text=text):
                self._stream("text", text)
            case ReasoningDelta(text=text):
                self._stream("reasoning", text)
            case RefusalDelta(text=text):
                self._stream("refusal", text)
            case ToolCallStarted(index=index, name=name):
                self._calls[index] = _Streaming(name)
                self._redraw()
            case ToolCallDelta(index=index, name=name, delta=delta):
                self._calls.setdefault(index, _Streaming(name)).raw += delta
                if self._terminal:
                    self._redraw()
                elif delta:
                    self._stream(f"call{index}", delta.translate(_ONE_LINE), name=name)
            case ToolCallReady(index=index, name=name, raw_arguments=raw):
                self._call_done(index, name, raw, None)
            case ToolCallInvalid(index=index, name=name, raw_arguments=raw, error=error):
                self._call_done(index, name or "(no name)", raw, error)
            case (
                ApprovalRequested()
                | ToolCallApproved()
                | ToolCallDenied()
                | ToolStarted()
                | ToolProgress()
                | ToolFinished()
                | ToolCancelled()
            ):
                self._tool_event(event)
            case StepFinished():
                self._waiting = None
                self._note(self._metrics(event))
            case StepInterrupted(error=error, retry_in=delay):
                self._waiting = None
                self._calls.clear()
                shown = event.retracted_text or event.retracted_reasoning or event.retracted_calls
                withdrawn = "; its output above is withdrawn" if shown else ""
                then = f"trying again in {delay:.1f}s" if delay is not None else "giving up"
                self._line([(f"step interrupted: {error}{withdrawn}; {then}", "warn")])
            case OutputReady(value=value):
                self._calls.clear()  # a final-answer call is done with
                self._emit(self._erase() + self._end_inline())
                self._line([("output:", "bold")])
                for line in to_json(value, indent=2).decode().splitlines():
                    self._line([(line.translate(_CONTROLS), None)])
            case OutputInvalid(error=error):
                self._calls.clear()
                self._emit(self._erase() + self._end_inline())
                self._line([(f"invalid output: {error.translate(_ONE_LINE)}", "warn")])
            case MaxStepsReached(max_steps=limit):
                self._line([(f"reached the step limit ({limit} steps)", "warn")])
            case UsageLimitReached(limit=limit, value=value, maximum=maximum):
                self._line([(f"usage limit {limit}: {value:g} > {maximum:g}", "warn")])
            case FallbackUsed(failed_model=failed, model=model):
                self._line([(f"{failed} gave up on this step; {model} answers it", "warn")])
            case RunFinished(result=result):
                if result.stop_reason == "approval_required":
                    names = ", ".join(request.tool for request in result.approvals)
                    self._line([(f"paused: {names} waits for approval", "warn")])
                elif result.stop_reason != "answer":
                    self._line([(f"stopped: {result.stop_reason}", "warn")])
                if len(result.steps) > 1:
                    totals = [f"{len(result.steps)} steps", f"{result.duration:.2f}s"]
                    if result.cost is not None:
                        totals.append(f"${result.cost:.4f}")
                    self._note(
                        "total: " + self._glyph["sep"].join([*totals, _tokens(result.usage)])
                    )
            case _:
                pass  # run start, server errors and failures are reported by the caller

    def _tool_event(self, event: Event) -> None:
        """Show a tool's approval, start, progress, end or withdrawal."""
        match event:
            case ApprovalRequested(index=index, name=name, arguments=arguments):
                raw = json.dumps(arguments, ensure_ascii=False, default=str)
                self._call_done(index, name, raw, None)
                self._line([(f"   {name} needs approval", "warn")])
            case ToolCallApproved(name=name):
                self._line([(f"   {name}: approved", "ok")])
            case ToolCallDenied(name=name, reason=reason):
                why = f": {reason.translate(_ONE_LINE)}" if reason else ""
                self._line([(f"   {name}: denied{why}", "bad")])
            case ToolStarted(id=call_id, name=name, arguments=arguments):
                now = self._clock()
                self._tools = (self._tools[0] if self._tools else now, now)
                text = json.dumps(arguments, ensure_ascii=False, default=str)
                self._running[call_id] = _Running(name, text, now)
                self._redraw()
            case ToolProgress():
                self._tool_progress(event)
            case ToolFinished():
                self._tool_done(event)
            case ToolCancelled(id=call_id, name=name, reason=reason, finished=finished):
                self._running.pop(call_id, None)
                what = "result dropped" if finished else "cancelled"
                text = f"{self._glyph['bad']} {name} {what}: {reason.translate(_ONE_LINE)}"
                self._line([(text, "warn")])
            case _:
                pass

    def tick(self) -> None:
        """Redraw the elapsed times of the wait and of running tools."""
        if self._terminal and (self._running or self._waiting is not None):
            self._redraw()

    def interrupted(self) -> None:
        """Clear the live lines (the caller says on stderr that the turn was stopped)."""
        self._reset_live()
        self._emit(self._erase() + self._end_inline())

    def finish(self) -> None:
        """Clear the live lines and end an unfinished line."""
        self._reset_live()
        self._emit(self._erase() + self._end_inline())

    # --- pieces of output ---------------------------------------------------------------

    def _call_done(self, index: int, name: str, raw: str, error: str | None) -> None:
        streamed = self._calls.pop(index, None)
        if not self._terminal:
            if self._inline == f"call{index}":
                self._emit(self._end_inline())
            elif streamed is None or not streamed.raw:  # nothing shown yet: show it whole
                self._line([(f"{self._glyph['call']} {name} {raw}".rstrip(), None)])
            if error is not None:
                self._line([(f"   invalid call: {error.translate(_ONE_LINE)}", None)])
            return
        args = self._clip(raw.translate(_ONE_LINE), 300)
        glyph, style = (
            (self._glyph["call"], "call") if error is None else (self._glyph["bad"], "bad")
        )
        self._line([(glyph + " ", style), (name, "name"), (" " + args, "dim")])
        if error is not None:
            self._line([("  invalid call: " + error.translate(_ONE_LINE), "warn")])

    def _tool_progress(self, event: ToolProgress) -> None:
        running = self._running.get(event.id)
        if running is None:
            return
        parts = []
        if event.fraction is not None:
            parts.append(_bar(event.fraction, self._glyph["more"] == "…"))
        if event.message:
            parts.append(event.message.translate(_ONE_LINE))
        elif event.output:
            parts.append(_tail(event.output.translate(_ONE_LINE), 40, self._glyph["more"]))
        running.progress = " ".join(parts)
        if self._terminal:
            self._redraw()
            return
        # Plain text: a line when the status changes or the bar moves by a tenth.
        percent = f" {int(event.fraction * 10) * 10}%" if event.fraction is not None else ""
        status = f" {event.message.translate(_ONE_LINE)}" if event.message else ""
        line = percent + status
        if line and line != running.shown:
            running.shown = line
            self._line([(f".. {event.name}{line}", None)])

    def _tool_done(self, event: ToolFinished) -> None:
        self._running.pop(event.id, None)
        now = self._clock()
        self._tools = (self._tools[0] if self._tools else now, now)
        output = _notes_first(event.output) if event.media else event.output
        output = output.translate(_ONE_LINE).strip() or "(empty)"
        seconds = f"{event.duration:.2f}s" + (" reused" if event.reused else "")
        if not self._terminal:
            state = "" if event.ok else " failed"
            text = f"{self._glyph['ok']} {event.name}{state} ({seconds}): "
            self._line([(text + self._clip(output, _PLAIN_LIMIT), None)])
            return
        glyph, style = (self._glyph["ok"], "ok") if event.ok else (self._glyph["bad"], "bad")
        head = f"{glyph} {event.name} {seconds}  "
        room = max(self._columns() - 1 - _cells(head), 20)
        self._line([(f"{glyph} ", style), (event.name, "bold"), (f" {seconds}  ", "dim"),
                    (self._clip(output, room), None if event.ok else "bad")])  # fmt: skip

    def _metrics(self, event: StepFinished) -> str:
        parts = []
        if event.time_to_first_token is not None:
            parts.append(f"ttft {event.time_to_first_token:.2f}s")
        if event.tokens_per_second is not None:
            parts.append(f"{event.tokens_per_second:.0f} tok/s")
        if self._tools is not None:
            parts.append(f"tools {self._tools[1] - self._tools[0]:.2f}s")
        if event.usage is not None:
            parts.append(_tokens(event.usage))
        parts.append(f"{event.duration:.2f}s")
        return f"step {event.step}: " + self._glyph["sep"].join(parts)

    def _live_lines(self) -> list[str]:
        width = self._columns() - 1
        now = self._clock()
        lines = []
        if self._waiting is not None:
            elapsed = now - self._waiting
            lines.append(self._fit(self._spin(elapsed), ("waiting for the model", "dim"),
                                   (f" {elapsed:.1f}s", "dim"), width=width))  # fmt: skip
        for call in self._calls.values():
            glyph = self._glyph["call"] + " "
            room = width - _cells(glyph) - _cells(call.name) - 1
            raw = _tail(call.raw.translate(_ONE_LINE), room, self._glyph["more"])
            lines.append(self._fit((glyph, "call"), (call.name, "name"), (" " + raw, "dim"),
                                   width=width))  # fmt: skip
        for running in self._running.values():
            elapsed = now - running.started
            clock = f" {elapsed:.1f}s"
            room = width - 2 - _cells(running.name) - 1 - _cells(clock)
            shown = running.progress or running.arguments.translate(_ONE_LINE)
            args = _head(shown, room, self._glyph["more"])
            lines.append(self._fit(self._spin(elapsed), (running.name, "bold"),
                                   (" " + args, "dim"), (clock, None), width=width))  # fmt: skip
        return lines

    def _spin(self, elapsed: float) -> Segment:
        return self._spinner[int(elapsed * 10) % len(self._spinner)] + " ", "call"

    # --- writing ------------------------------------------------------------------------

    def _stream(self, kind: str, text: str, *, name: str = "") -> None:
        """Write streamed text, starting a new line when the kind of text changes."""
        parts = [self._erase()]
        if self._inline != kind:
            parts.append(self._end_inline())
            self._inline = kind
            if kind == "reasoning" and not self._terminal:
                parts.append("thinking: ")
            elif kind == "refusal":
                parts.append(self._paint("refusal: ", "bad"))
            elif kind.startswith("call"):
                parts.append(f"{self._glyph['call']} {name} ")
        style = {"reasoning": "dim", "refusal": "bad"}.get(kind)
        parts.append(self._paint(text.translate(_CONTROLS), style))
        self._emit("".join(parts))

    def _note(self, text: str) -> None:
        """A line of figures: dim on a terminal, in brackets in plain text."""
        self._line([(text, "dim")] if self._terminal else [(f"[{text}]", None)])

    def _line(self, segments: list[Segment]) -> None:
        """Write one finished line above the live lines."""
        text = "".join(self._paint(text, style) for text, style in segments)
        self._emit(self._erase() + self._end_inline() + text + "\n")
        self._redraw()

    def _redraw(self) -> None:
        if not self._terminal:
            return
        lines = self._live_lines()
        parts = [self._erase()]
        if lines:
            parts.append(self._end_inline())
        parts.append("\n".join(lines))
        self._drawn = len(lines)
        self._emit("".join(parts))

    def _erase(self) -> str:
        """Move to the start of the live lines and clear them (an escape sequence)."""
        if not self._drawn:
            return ""
        up = f"\x1b[{self._drawn - 1}A" if self._drawn > 1 else ""
        self._drawn = 0
        return "\r" + up + "\x1b[J"

    def _end_inline(self) -> str:
        if self._inline is None:
            return ""
        self._inline = None
        return "\n"

    def _reset_live(self) -> None:
        self._waiting = None
        self._calls.clear()
        self._running.clear()

    def _emit(self, text: str) -> None:
        if text:
            self._out.write(text)
            self._out.flush()

    def _paint(self, text: str, style: str | None) -> str:
        if not self._terminal or style is None or not text:
            return text
        return _STYLE[style] + text + _RESET

    def _fit(self, *segments: Segment, width: int) -> str:
        """Paint segments, cutting them off at `width` cells."""
        out = []
        for text, style in segments:
            text = _head(text, width, "")
            width -= _cells(text)
            out.append(self._paint(text, style))
        return "".join(out)

    def _clip(self, text: str, limit: int) -> str:
        if len(text) <= limit:
            return text
        more = f"{self._glyph['more']} (+{len(text) - limit} chars)"
        return text[: max(limit - len(more), 10)] + more

    def _columns(self) -> int:
        return self._width or shutil.get_terminal_size((80, 24)).columns


def _bar(fraction: float, fancy: bool) -> str:
    """A ten-cell progress bar and its percentage."""
    filled = round(fraction * 10)
    full, empty = ("█", "░") if fancy else ("#", ".")
    return f"[{full * filled}{empty * (10 - filled)}] {fraction:4.0%}"


def _tokens(usage: Usage) -> str:
    text = f"tokens {usage.prompt_tokens} in, {usage.completion_tokens} out"
    extras = [f"{usage.reasoning_tokens} reasoning"] if usage.reasoning_tokens else []
    extras += [f"{usage.cached_tokens} cached"] if usage.cached_tokens else []
    return text + (f" ({', '.join(extras)})" if extras else "")


def _cells(text: str) -> int:
    """Terminal cells `text` takes: wide East Asian characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _head(text: str, cells: int, more: str) -> str:
    """The start of `text` in at most `cells` cells, marked with `more` if cut."""
    if _cells(text) <= cells:
        return text
    room = max(cells - _cells(more), 0)
    kept, used = [], 0
    for c in text:
        used += _cells(c)
        if used > room:
            break
        kept.append(c)
    return "".join(kept) + (more if cells >= _cells(more) else "")


def _tail(text: str, cells: int, more: str) -> str:
    """The end of `text` in at most `cells` cells, marked with `more` if cut."""
    return _head(text[::-1], cells, more[::-1])[::-1]
