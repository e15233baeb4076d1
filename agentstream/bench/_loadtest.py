"""The fault-and-load test: many concurrent runs against the offline model, with faults.

`python -m agentstream load-test` starts the offline model on a loopback port and,
in the same process, that many agent runs at once, sharing one `openai` client. Each
run asks for parallel tool calls over several steps; a share of the model's responses
act out a fault (a dropped connection, HTTP 429 or 503, a stall, a malformed chunk, an
error payload). When every run has ended it checks what the runtime promises:

- every run either answered or failed with a typed `RunError`; none hung;
- every tool ran at most once per tool call id, and only for calls the conversation
  holds (never for a call of a broken attempt);
- every conversation is consistent: each assistant tool call is answered, in order;
- no task and no socket is left open.

A tenth of the runs have retries turned off, so that failures are exercised too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, TextIO

import anyio
import httpx2
import openai

from .._agent import Agent
from .._events import StepInterrupted
from .._exceptions import RunError
from ..loop._retries import Retries
from ..loop._timeouts import Timeouts
from ..testing import Fault, ModelRequest, Reply, ScriptedModel, offline_policy, serve
from ..tools._tool import Tool, ToolContext, tool

__all__ = ["LoadReport", "load_test"]

_CITIES = ("Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Dakar", "Hanoi", "Perth")
_NO_RETRIES_EVERY = 10


@dataclass(slots=True)
class LoadReport:
    """What a load test observed; `ok` says whether every promise held."""

    runs: int
    seconds: float = 0.0
    completed: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    """Runs that failed with a typed error, by error class."""
    failed_retrying: int = 0
    """Of those, runs that had retries on (the others had them off)."""
    untyped: list[str] = field(default_factory=list)
    """Runs that ended with any other exception (there must be none)."""
    hung: int = 0
    peak_concurrent: int = 0
    requests: int = 0
    faulted: dict[str, int] = field(default_factory=dict)
    """Responses that acted out a fault, by kind."""
    retries: int = 0
    tool_runs: int = 0
    ran_twice: int = 0
    """Tool call ids executed more than once (there must be none)."""
    ran_unrecorded: int = 0
    """Executions of calls that are not in their run's conversation (there must be none)."""
    inconsistent: int = 0
    """Conversations with an unanswered or out-of-order tool call (there must be none)."""
    open_tasks: int = 0
    open_sockets: int | None = None
    peak_rss_per_run_kib: float | None = None

    @property
    def fault_share(self) -> float:
        """The share of responses that acted out a fault."""
        return sum(self.faulted.values()) / self.requests if self.requests else 0.0

    @property
    def ok(self) -> bool:
        """Whether every run ended typed, no tool ran twice, and nothing was left open."""
        return (
            self.completed + sum(self.failed.values()) == self.runs
            and not self.untyped
            and not self.hung
            and not self.ran_twice
            and not self.ran_unrecorded
            and not self.inconsistent
            and not self.open_tasks
            and not self.open_sockets
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = dataclasses.asdict(self)
        data.update(fault_share=round(self.fault_share, 4), ok=self.ok)
        return data

    def format(self) -> str:
        """The report as a table for a person."""
        failed = ", ".join(f"{n} {name}" for name, n in sorted(self.failed.items())) or "none"
        faults = ", ".join(f"{n} {kind}" for kind, n in sorted(self.faulted.items()))
        memory = (
            f"{self.peak_rss_per_run_kib:.0f} KiB" if self.peak_rss_per_run_kib is not None
            else "not measured (needs /proc)"
        )  # fmt: skip
        rows = [
            ("runs started together", f"{self.runs} (peak concurrent: {self.peak_concurrent})"),
            ("completed", str(self.completed)),
            ("failed with a typed error", f"{sum(self.failed.values())} ({failed}); "
             f"{self.failed_retrying} of them with retries on"),
            ("untyped exceptions / hung", f"{len(self.untyped)} / {self.hung}"),
            ("responses / with a fault", f"{self.requests} / {sum(self.faulted.values())} "
             f"({self.fault_share:.1%}: {faults or 'none'})"),
            ("steps retried", str(self.retries)),
            ("tool runs / ids run twice / outside the conversation",
             f"{self.tool_runs} / {self.ran_twice} / {self.ran_unrecorded}"),
            ("inconsistent conversations", str(self.inconsistent)),
            ("tasks / sockets left open", f"{self.open_tasks} / {self.open_sockets}"),
            ("peak memory per run (RSS, client and server)", memory),
            ("wall time", f"{self.seconds:.1f} s"),
            ("verdict", "ok" if self.ok else "FAILED"),
        ]  # fmt: skip
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


class _Policy:
    """The offline model, one round of the prompt per step, with faults at random.

    The prompt's lines are rounds; each step answers the next round as the offline
    model would answer that line alone (parallel calls), and after the last round
    the offline model sums up every call.
    """

    def __init__(self, fault_rate: float, seed: int, stall: float) -> None:
        self._rng = random.Random(seed)
        self._fault_rate = fault_rate
        self._stall = stall
        self.requests = 0
        self.faulted: Counter[str] = Counter()

    def __call__(self, request: ModelRequest) -> Reply:
        self.requests += 1
        reply = offline_policy(self._round(request))
        if self._rng.random() < self._fault_rate:
            kind, fault = self._fault()
            self.faulted[kind] += 1
            return dataclasses.replace(reply, fault=fault)
        return reply

    def _round(self, request: ModelRequest) -> ModelRequest:
        messages = request.messages
        rounds = str(messages[0].get("content", "")).splitlines() if messages else []
        done = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
        body = dict(request.body)
        if done < len(rounds):
            body["messages"] = [{"role": "user", "content": rounds[done]}]
        else:
            body["tool_choice"] = "none"  # sum up the calls of every round
        return dataclasses.replace(request, body=body)

    def _fault(self) -> tuple[str, Fault]:
        after = self._rng.randint(1, 6)
        kinds = {
            "drop": Fault(drop_after=after),
            "http 429": Fault(status=429, retry_after=0.05),
            "http 503": Fault(status=503),
            "stall": Fault(stall_after=after, stall_seconds=self._stall),
            "malformed": Fault(malformed_after=after),
            "error payload": Fault(error_after=after),
        }
        kind = self._rng.choice(sorted(kinds))
        return kind, kinds[kind]


def _tools(ledger: Counter[tuple[str, str]]) -> list[Tool]:
    """Two I/O-bound tools that record each execution by run and tool call id."""

    @tool
    async def get_weather(location: str, context: ToolContext) -> dict[str, Any]:
        """Get the current weather in a city."""
        ledger[context.run_id, context.tool_call_id] += 1
        await anyio.sleep(0.01)
        return {"location": location, "temperature": 10 + len(location), "conditions": "clear"}

    @tool
    async def get_local_time(location: str, context: ToolContext) -> dict[str, Any]:
        """Get the local time in a city."""
        ledger[context.run_id, context.tool_call_id] += 1
        await anyio.sleep(0.01)
        return {"location": location, "time": f"{len(location):02d}:00"}

    return [get_weather, get_local_time]


def _prompt(number: int) -> str:
    city = _CITIES[number % len(_CITIES) :] + _CITIES
    return "\n".join(
        [
            f"What's the weather in {city[0]} and {city[1]}?",
            f"What is the local time in {city[2]}, {city[3]} and {city[4]}?",
            f"What's the weather in {city[5]} and {city[6]}?",
        ]
    )


def _answered(messages: Sequence[Mapping[str, Any]]) -> tuple[bool, set[str]]:
    """Whether every assistant tool call is answered in order, and the calls' ids."""
    ids: set[str] = set()
    position = 0
    while position < len(messages):
        message = messages[position]
        position += 1
        calls = message.get("tool_calls") or () if message.get("role") == "assistant" else ()
        for call in calls:
            if position >= len(messages):
                return False, ids
            answer = messages[position]
            if answer.get("role") != "tool" or answer.get("tool_call_id") != call["id"]:
                return False, ids
            if call["id"] in ids:
                return False, ids
            ids.add(call["id"])
            position += 1
    return True, ids


def _sockets() -> int | None:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    count = 0
    for name in names:
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return count


def _rss_kib() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _raise_file_limit(wanted: int) -> None:
    """Let the process open `wanted` files, as far as its hard limit allows."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def load_test(
    runs: int = 500,
    *,
    fault_rate: float = 0.08,
    seed: int = 0,
    ttft: float = 0.2,
    limit: float = 240.0,
    progress: TextIO | None = None,
) -> LoadReport:
    """Run the load test (see the module docs) and return what it observed.

    `ttft` paces the offline model so that the runs overlap; `limit` is the time after
    which the runs still going are counted as hung and cancelled.
    """
    report = LoadReport(runs)
    _raise_file_limit(4 * runs + 256)
    tasks_before = len(anyio.get_running_tasks())
    sockets_before = _sockets()
    rss_before = _rss_kib()
    policy = _Policy(fault_rate, seed, stall=3.0)
    crowd = _Crowd(report, Timeouts(first_chunk=30.0, idle=1.0, run=limit), rss_before or 0)
    crowd.progress = progress
    started = perf_counter()
    await crowd.drive(ScriptedModel(policy, ttft=ttft), runs, limit)
    report.seconds = perf_counter() - started
    report.requests = policy.requests
    report.faulted = dict(sorted(policy.faulted.items()))
    crowd.tally()
    for _ in _settling(2.0):  # let closed connections' tasks finish
        if len(anyio.get_running_tasks()) <= tasks_before and _sockets() == sockets_before:
            break
        await anyio.sleep(0.05)
    report.open_tasks = max(len(anyio.get_running_tasks()) - tasks_before, 0)
    after = _sockets()
    report.open_sockets = (
        None if after is None or sockets_before is None else after - sockets_before
    )
    if rss_before is not None and crowd.peak_rss:
        report.peak_rss_per_run_kib = (crowd.peak_rss - rss_before) / runs
    return report


class _Crowd:
    """The runs of one load test, started together, and the ledger of their tools."""

    def __init__(self, report: LoadReport, timeouts: Timeouts, rss: int) -> None:
        self.report = report
        self.timeouts = timeouts
        self.retries = Retries(max_retries=3, backoff=0.05, max_backoff=0.5)
        self.ledger: Counter[tuple[str, str]] = Counter()
        self.tools = _tools(self.ledger)
        self.recorded: dict[str, set[str]] = {}
        self.go = anyio.Event()
        self.active = 0
        self.peak_rss = rss
        self.progress: TextIO | None = None

    async def drive(self, model: ScriptedModel, runs: int, limit: float) -> None:
        """Serve `model` on loopback and run `runs` agents against it at once."""
        async with anyio.create_task_group() as server:
            port = await server.start(serve, model)
            server.start_soon(self.watch_memory)
            limits = httpx2.Limits(max_connections=runs + 16, max_keepalive_connections=runs + 16)
            async with openai.AsyncOpenAI(
                api_key="load-test-key",
                base_url=f"http://127.0.0.1:{port}/v1",
                max_retries=0,
                http_client=httpx2.AsyncClient(limits=limits, timeout=60.0),
            ) as client:
                with anyio.move_on_after(limit + 30):
                    async with anyio.create_task_group() as group:
                        for number in range(runs):
                            group.start_soon(self.one, client, number)
                        await anyio.sleep(0)
                        self.go.set()
                self.report.hung = self.active
            server.cancel_scope.cancel()

    async def one(self, client: openai.AsyncOpenAI, number: int) -> None:
        """One run, counted by how it ended; its conversation checked afterwards."""
        report = self.report
        retrying = number % _NO_RETRIES_EVERY != 0
        agent = Agent(
            client=client, model="load", tools=self.tools, timeouts=self.timeouts,
            retries=self.retries if retrying else Retries(max_retries=0),
        )  # fmt: skip
        await self.go.wait()
        self.active += 1
        report.peak_concurrent = max(report.peak_concurrent, self.active)
        run = agent.stream(_prompt(number))
        try:
            async with run:
                async for event in run:
                    if isinstance(event, StepInterrupted) and event.retry_in is not None:
                        report.retries += 1
            report.completed += 1
        except RunError as exc:
            report.failed[type(exc).__name__] = report.failed.get(type(exc).__name__, 0) + 1
            report.failed_retrying += retrying
        except Exception as exc:  # what the runtime promises never happens; count it
            report.untyped.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.active -= 1
            consistent, ids = _answered(run.messages)
            report.inconsistent += not consistent
            self.recorded[run.run_id] = ids

    async def watch_memory(self) -> None:
        """Track the peak memory; say how far the runs are, where someone watches."""
        report = self.report
        for tick in itertools.count():
            self.peak_rss = max(self.peak_rss, _rss_kib() or 0)
            if self.progress is not None and tick % 10 == 0:
                ended = report.completed + sum(report.failed.values()) + len(report.untyped)
                self.progress.write(f"\r\x1b[2Kload-test: {ended} of {report.runs} runs ended")
                self.progress.flush()
            await anyio.sleep(0.05)

    def tally(self) -> None:
        """Count tool runs: in all, more than once, and outside any conversation."""
        report = self.report
        ledger = self.ledger
        report.tool_runs = sum(ledger.values())
        report.ran_twice = sum(1 for count in ledger.values() if count > 1)
        report.ran_unrecorded = sum(
            1 for run_id, id_ in ledger if id_ not in self.recorded.get(run_id, ())
        )


def _settling(seconds: float) -> Iterator[None]:
    deadline = perf_counter() + seconds
    while perf_counter() < deadline:
        yield None


def main(runs: int, fault_rate: float, seed: int, as_json: bool, backend: str) -> int:
    """The `load-test` command: print the report; exit 0 if every promise held."""
    watch = sys.stderr if not as_json and sys.stdout.isatty() and sys.stderr.isatty() else None
    report = anyio.run(
        lambda: load_test(runs, fault_rate=fault_rate, seed=seed, progress=watch), backend=backend
    )
    if watch is not None:
        watch.write("\r\x1b[2K")
    print(json.dumps(report.to_dict()) if as_json else report.format(), file=sys.stdout)
    return 0 if report.ok else 1
