"""The benchmark's model: a scripted workload served on loopback from a child process.

The server runs in its own process so that its CPU time is not the client's, and the
parent can read that CPU time from `/proc/PID/stat` to show that serving is not what
limits the figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from ..testing import Reply, ScriptedModel, ToolCall, serve
from ..testing._faults import FAULT_HEADER, header_options
from ..testing._request import ModelRequest
from ..testing._wire import Answer

__all__ = ["ChildServer", "Workload", "child_server", "make_arguments", "workload_policy"]

_LOREM = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while",
          "seven", "tired", "otters", "count", "pebbles", "by", "the", "river")  # fmt: skip


def _words(count: int, offset: int = 0) -> str:
    return " ".join(_LOREM[(offset + i) % len(_LOREM)] for i in range(count))


def make_arguments(size: int, seed: int = 0) -> dict[str, Any]:
    """Tool arguments whose JSON text is about `size` characters."""
    notes = _words(max(size // 5, 1), seed)[: max(size - 40, 1)]
    return {"query": f"item {seed}", "notes": notes}


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """What one agent run streams: text and tool calls, then an answer."""

    intro_words: int = 60
    """Words of text before the tool calls in the first response."""
    calls: int = 2
    """Tool calls in the first response."""
    argument_size: int = 1024
    """Characters of each call's JSON arguments (sent 4 characters a chunk)."""
    answer_words: int = 200
    """Words of the answer, after the tool results."""

    def replies(self) -> tuple[Reply, Reply]:
        """The first response (text and calls) and the answer."""
        calls = [
            ToolCall("lookup", make_arguments(self.argument_size, i), id=f"call_{i}")
            for i in range(self.calls)
        ]
        first = Reply(_words(self.intro_words), tool_calls=calls, piece_size=4)
        return first, Reply(_words(self.answer_words, 7))


def workload_policy(workload: Workload) -> Any:
    """A policy: the answer once the conversation ends with tool results, else the calls.

    It honours `x-agentstream-fault` (a stall, to hold runs idle) as the offline model does.
    """
    first, answer = workload.replies()

    def policy(request: ModelRequest) -> Reply:
        messages = request.messages
        reply = answer if messages and messages[-1].get("role") == "tool" else first
        _, fault = header_options(request.headers)
        if fault is not None:
            return Reply(reply.text, tool_calls=reply.tool_calls, fault=fault)
        return reply

    return policy


class _PrerenderedModel(ScriptedModel):
    """Answers each kind of request with bytes encoded once, so serving costs little.

    Every answer to the same kind of request is the same bytes (the same completion id
    included), which no client measured here looks at. Requests are not kept.
    """

    def __init__(self, workload: Workload) -> None:
        super().__init__(workload_policy(workload), name="bench")
        self._encoded: dict[tuple[str, bool, str, str], Answer] = {}

    def _handle(self, request: ModelRequest) -> Answer:
        messages = request.messages
        last = messages[-1].get("role", "") if messages else ""
        key = (last, request.include_usage, request.headers.get(FAULT_HEADER, ""), request.api)
        answer = self._encoded.get(key)
        if answer is None:
            answer = self._encoded[key] = super()._handle(request)
            self._requests.clear()
        return answer


async def _serve(workload: Workload) -> None:
    model = _PrerenderedModel(workload)
    async with anyio.create_task_group() as tasks:
        port = await tasks.start(serve, model)
        print(port, flush=True)


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


class ChildServer:
    """A workload served by a child process; `cpu_seconds()` reads its CPU time."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._ticks = _clock_ticks()

    def cpu_seconds(self) -> float | None:
        """User plus system CPU seconds the server has used; None without /proc."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
                text = stat.read()
        except OSError:
            return None
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks


@contextmanager
def child_server(workload: Workload) -> Iterator[ChildServer]:
    """Start the server in a fresh Python process; stop it on exit."""
    spec = json.dumps(dataclasses.asdict(workload))
    process = subprocess.Popen(
        [sys.executable, "-m", "agentstream.bench._serve", spec],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("the benchmark server did not start")
        yield ChildServer(process, int(line))
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def cpu_now() -> float:
    """This process's CPU seconds (user and system), all threads."""
    return time.process_time()


if __name__ == "__main__":
    anyio.run(_serve, Workload(**json.loads(sys.argv[1])))
