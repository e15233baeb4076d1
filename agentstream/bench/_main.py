"""`python -m agentstream bench`: what agentstream costs next to the SDK and a bare loop.

Four sections, each repeated and summarised as median, min and max:

- assembly: merging pre-decoded chunks (`_assembly`);
- e2e: one run after another over loopback, bare loop vs SDK vs agent (`_clients`);
- scale: K concurrent runs, bare loop vs agent, and the memory of an idle run;
- tools: 8 parallel I/O-bound tool calls against the slowest one alone;
- output: a typed answer's partial value kept up as it streams (`_output`).
- early: tools started as soon as their call is complete, against after the response
  (`_early`).
- speed: what time limits and observers cost per chunk on both wires, the start-up of
  thousands of idle runs beside idle SDK streams, and the targets of issue 25 as
  ratios (`_speed`).

The model is served from a child process (`_serve`) whose CPU time is reported,
so that a busy server cannot pass for a slow client.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TextIO

import anyio
import openai

from ._assembly import argument_stream, time_merger, time_side_by_side
from ._clients import Clients, RunTiming, idle_memory, open_clients, parallel_tools
from ._early import early_section
from ._output import time_output
from ._responses import ResponsesClients, responses_bodies
from ._serve import ChildServer, Workload, child_server, cpu_now, workload_policy
from ._speed import speed_section, targets

__all__ = ["SECTIONS", "BenchOptions", "run_bench"]

SECTIONS = ("assembly", "output", "e2e", "scale", "tools", "early", "speed")
_KB = 1024


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What to run, and how much of it."""

    quick: bool = False
    reps: int | None = None
    sections: Sequence[str] = SECTIONS
    backend: str = "asyncio"
    progress: TextIO | None = None
    """Where to say which section runs and how far it is (a terminal), or nowhere."""

    def say(self, text: str) -> None:
        """One progress line, overwriting the last one, on `progress` if any."""
        if self.progress is not None:
            self.progress.write(f"\r\x1b[2Kbench: {text}")
            self.progress.flush()

    @property
    def repetitions(self) -> int:
        return self.reps if self.reps is not None else (1 if self.quick else 5)

    @property
    def sizes(self) -> list[int]:
        return [_KB] if self.quick else [_KB, 10 * _KB, 100 * _KB, 1024 * _KB]

    @property
    def sdk_budget(self) -> float:
        """Seconds of SDK merging per stream and repetition before it is cut short."""
        return 0.05 if self.quick else 1.5

    @property
    def min_chunks(self) -> int:
        """Chunks each fast merger is timed over, passing over short streams again."""
        return 0 if self.quick else 20_000

    @property
    def runs(self) -> int:
        """Sequential runs per client and repetition in the e2e section."""
        return 2 if self.quick else 20

    @property
    def concurrency(self) -> list[int]:
        return [1, 4] if self.quick else [1, 10, 100, 500]

    @property
    def startup_counts(self) -> list[int]:
        """Idle runs started at once, for the start-up curve of the speed section."""
        return [50, 100, 200] if self.quick else [1000, 5000, 10000]

    @property
    def startup_profile_count(self) -> int:
        """Idle runs started under the profiler (which slows them) to find the pool's share."""
        return 200 if self.quick else 5000

    @property
    def workload(self) -> Workload:
        if self.quick:
            return Workload(intro_words=10, calls=2, argument_size=128, answer_words=20)
        return Workload()

    @property
    def tool_seconds(self) -> list[float]:
        slowest = 0.02 if self.quick else 0.2
        return [slowest * (i + 1) / 8 for i in range(8)]


def stat(samples: Sequence[float]) -> dict[str, float]:
    """Median, min and max."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the chosen sections; return the figures as JSON-ready data."""
    result: dict[str, Any] = {"meta": _meta(options)}
    if "assembly" in options.sections:
        result["assembly"] = _assembly(options)
    if "output" in options.sections:
        result["output"] = _output(options)
    if "tools" in options.sections:
        result["tools"] = anyio.run(_tools, options, backend=options.backend)
    if "early" in options.sections:
        reps = options.reps if options.reps is not None else (2 if options.quick else 20)
        result["early"] = anyio.run(early_section, reps, backend=options.backend)
    if {"e2e", "scale", "speed"} & set(options.sections):
        with child_server(options.workload) as server:
            result.update(anyio.run(_loopback, options, server, backend=options.backend))
    if "speed" in options.sections:
        result["targets"] = targets(result)
    return result


def _meta(options: BenchOptions) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "openai": openai.__version__,
        "backend": options.backend,
        "repetitions": options.repetitions,
        "quick": options.quick,
    }


def _assembly(options: BenchOptions) -> dict[str, Any]:
    rows = []
    for number, size in enumerate(options.sizes, start=1):
        options.say(f"assembly, stream {number} of {len(options.sizes)} ({size // _KB} KB)")
        samples: dict[str, list[float]] = {"minimal": [], "agentstream": [], "sdk_state": []}
        ratio_minimal, ratio_sdk = [], []
        chunks = sum(1 for _ in argument_stream(size))  # in one pass
        sdk_fed = 0
        sdk_whole = True
        for _ in range(options.repetitions):
            fast = time_side_by_side(["minimal", "agentstream"], size, options.min_chunks)
            samples["minimal"].append(fast["minimal"])
            samples["agentstream"].append(fast["agentstream"])
            # The SDK's state is slow enough to time on one pass.
            per_chunk, sdk_fed, whole = time_merger("sdk_state", size, options.sdk_budget)
            samples["sdk_state"].append(per_chunk)
            sdk_whole = sdk_whole and whole
            ratio_minimal.append(samples["agentstream"][-1] / samples["minimal"][-1])
            ratio_sdk.append(samples["sdk_state"][-1] / samples["agentstream"][-1])
        rows.append(
            {
                "arguments_bytes": size,
                "chunks": chunks,
                **{f"{name}_us_per_chunk": stat(values) for name, values in samples.items()},
                "agentstream_over_minimal": stat(ratio_minimal),
                "sdk_state_over_agentstream": stat(ratio_sdk),
                "sdk_state_chunks_fed": sdk_fed,
                "sdk_state_whole_stream": sdk_whole,
            }
        )
    return {"rows": rows}


def _output(options: BenchOptions) -> dict[str, Any]:
    rows = []
    for size in options.sizes:
        samples: dict[str, list[float]] = {"assembler": [], "typed": [], "added": []}
        timed: dict[str, float] = {}
        for _ in range(options.repetitions):
            timed = time_output(size, options.min_chunks)
            samples["assembler"].append(timed["assembler"])
            samples["typed"].append(timed["typed"])
            samples["added"].append(timed["typed"] - timed["assembler"])
        rows.append(
            {
                "answer_bytes": size,
                "chunks": round(timed["chunks"]),
                "partial_values": round(timed["partial_values"]),
                **{f"{name}_us_per_chunk": stat(values) for name, values in samples.items()},
            }
        )
    return {"rows": rows}


async def _loopback(options: BenchOptions, server: ChildServer) -> dict[str, Any]:
    clients = await open_clients(server.base_url, workload_policy(options.workload))
    try:
        # Warm up every path (connections, imports, caches); count the run's chunks.
        probe = await clients.bare_run()
        for kind in ("sdk", "post", "agent"):
            await clients.runner(kind)()
        result: dict[str, Any] = {}
        if "e2e" in options.sections:
            result["e2e"] = await _e2e(options, server, clients, probe.chunks)
            result["e2e_responses"] = await _e2e_responses(options, server)
        if "scale" in options.sections:
            result["scale"] = await _scale(options, server, clients, probe.chunks)
        if "speed" in options.sections:
            result["speed"] = await speed_section(
                server.base_url, options.workload, options.runs, options.repetitions,
                options.startup_counts, options.startup_profile_count, options.backend,
                options.say,
            )  # fmt: skip
        return result
    finally:
        await clients.aclose()


@dataclass(slots=True)
class _Phase:
    """Wall time and the CPU shares of client and server over one measured phase."""

    seconds: float
    client_cpu: float
    server_cpu: float | None


async def _measured(server: ChildServer, work: Callable[[], Any]) -> tuple[Any, _Phase]:
    server_before, client_before, started = server.cpu_seconds(), cpu_now(), perf_counter()
    value = await work()
    seconds = perf_counter() - started
    server_after = server.cpu_seconds()
    server_share = None
    if server_before is not None and server_after is not None:
        server_share = (server_after - server_before) / seconds
    return value, _Phase(seconds, (cpu_now() - client_before) / seconds, server_share)


async def _e2e(
    options: BenchOptions, server: ChildServer, clients: Clients, chunks_per_run: int
) -> dict[str, Any]:
    kinds = ("bare", "sdk", "post", "agent")
    rate: dict[str, list[float]] = {kind: [] for kind in kinds}
    first: dict[str, list[float]] = {kind: [] for kind in kinds}
    bare_first: dict[str, list[float]] = {kind: [] for kind in kinds}  # in the same pairs
    shares: dict[str, list[float]] = {kind: [] for kind in kinds}
    client_shares: dict[str, list[float]] = {kind: [] for kind in kinds}
    for rep in range(options.repetitions):
        options.say(f"end to end, repetition {rep + 1} of {options.repetitions}")
        for kind in kinds:
            run = clients.runner(kind)

            async def sequence(run: Callable[[], Any] = run) -> list[RunTiming]:
                return [await run() for _ in range(options.runs)]

            timings, phase = await _measured(server, sequence)
            for timing in timings:
                if timing.chunks and timing.chunks != chunks_per_run:
                    raise RuntimeError(f"{kind} read {timing.chunks} chunks, not {chunks_per_run}")
            rate[kind].append(options.runs * chunks_per_run / phase.seconds)
            client_shares[kind].append(phase.client_cpu)
            if phase.server_cpu is not None:
                shares[kind].append(phase.server_cpu)
        # Time to first token: each client's runs alternate with the bare loop's, so
        # that a slow moment of a shared machine falls on both alike. Pairs, not a
        # round of all three: whatever runs just after the SDK's reader starts late
        # (its stream leaves its connection to be closed, and its objects to free).
        for kind in kinds[1:]:
            paired: dict[str, list[float]] = {"bare": [], kind: []}
            for _ in range(options.runs):
                for name in paired:
                    paired[name].append((await clients.runner(name)()).first_token)
            first[kind].append(statistics.median(paired[kind]))
            bare_first[kind].append(statistics.median(paired["bare"]))
        first["bare"].append(bare_first["agent"][-1])
        bare_first["bare"].append(bare_first["agent"][-1])
    rows = []
    for kind in kinds:
        pairs = list(zip(rate[kind], rate["bare"], strict=True))
        ttft_pairs = list(zip(first[kind], bare_first[kind], strict=True))
        rows.append(
            {
                "client": kind,
                "chunks_per_second": stat(rate[kind]),
                "ratio_to_bare": stat([a / b for a, b in pairs]),
                "first_token_ms": stat([1000 * t for t in first[kind]]),
                "added_first_token_ms": stat([1000 * (a - b) for a, b in ttft_pairs]),
                "client_cpu_share": stat(client_shares[kind]),
                "server_cpu_share": stat(shares[kind]) if shares[kind] else None,
            }
        )
    return {"chunks_per_run": chunks_per_run, "runs_per_repetition": options.runs, "rows": rows}


async def _e2e_responses(options: BenchOptions, server: ChildServer) -> dict[str, Any]:
    """The e2e section on the Responses API: bare loop, SDK and agent, events a second."""
    bodies = await responses_bodies(workload_policy(options.workload))
    clients = ResponsesClients(server.base_url, bodies)
    kinds = ("bare", "sdk", "agent")
    try:
        per_run = await clients.bare_run()
        for kind in kinds[1:]:
            await clients.runner(kind)()  # warm up
        rate: dict[str, list[float]] = {kind: [] for kind in kinds}
        for rep in range(options.repetitions):
            options.say(f"Responses API end to end, repetition {rep + 1}")
            for kind in kinds:
                run = clients.runner(kind)
                started = perf_counter()
                for _ in range(options.runs):
                    count = await run()
                    if count and count != per_run:
                        raise RuntimeError(f"{kind} read {count} events, not {per_run}")
                rate[kind].append(options.runs * per_run / (perf_counter() - started))
    finally:
        await clients.aclose()
    rows = [
        {
            "client": kind,
            "events_per_second": stat(rate[kind]),
            "ratio_to_bare": stat([a / b for a, b in zip(rate[kind], rate["bare"], strict=True)]),
            "us_per_event": stat([1e6 / r for r in rate[kind]]),
        }
        for kind in kinds
    ]
    return {"events_per_run": per_run, "runs_per_repetition": options.runs, "rows": rows}


async def _concurrent(run: Callable[[], Any], count: int) -> list[RunTiming]:
    timings: list[RunTiming] = []

    async def one() -> None:
        timings.append(await run())

    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            tasks.start_soon(one)
    return timings


async def _scale(
    options: BenchOptions, server: ChildServer, clients: Clients, chunks_per_run: int
) -> dict[str, Any]:
    rows = []
    for count in options.concurrency:
        options.say(f"scale, {count} concurrent runs")
        samples: dict[str, dict[str, list[float]]] = {
            kind: {"rate": [], "p50": [], "p99": [], "server": []} for kind in ("bare", "agent")
        }
        ratios = []
        for _ in range(options.repetitions):
            for kind, values in samples.items():
                work = functools.partial(_concurrent, clients.runner(kind), count)
                timings, phase = await _measured(server, work)
                firsts = [t.first_token for t in timings]
                values["rate"].append(count * chunks_per_run / phase.seconds)
                values["p50"].append(1000 * statistics.median(firsts))
                values["p99"].append(1000 * percentile(firsts, 0.99))
                if phase.server_cpu is not None:
                    values["server"].append(phase.server_cpu)
            ratios.append(samples["agent"]["rate"][-1] / samples["bare"]["rate"][-1])
        row: dict[str, Any] = {"runs": count, "agent_over_bare": stat(ratios)}
        for kind, values in samples.items():
            row[kind] = {
                "chunks_per_second": stat(values["rate"]),
                "first_token_p50_ms": stat(values["p50"]),
                "first_token_p99_ms": stat(values["p99"]),
                "server_cpu_share": stat(values["server"]) if values["server"] else None,
            }
        rows.append(row)
    idle = max(options.concurrency)
    traced, rss = await idle_memory(clients, idle)
    memory = {
        "idle_runs": idle,
        "tracemalloc_bytes_per_run": round(traced),
        "rss_bytes_per_run": round(rss),
        "runs_per_gb_tracemalloc": round(1e9 / traced) if traced > 0 else None,
    }
    return {"rows": rows, "idle_memory": memory}


async def _tools(options: BenchOptions) -> dict[str, Any]:
    durations = options.tool_seconds
    slowest = max(durations)
    rows = []
    for threads in (False, True):
        options.say(f"tools, {'threads' if threads else 'async'}")
        together, alone, ratios = [], [], []
        for _ in range(options.repetitions):
            together.append(await parallel_tools(durations, threads=threads))
            alone.append(await parallel_tools([slowest], threads=threads))
            ratios.append(together[-1] / alone[-1])
        rows.append(
            {
                "tools": "sync (threads)" if threads else "async",
                "calls": len(durations),
                "slowest_seconds": slowest,
                "parallel_wall_seconds": stat(together),
                "slowest_alone_seconds": stat(alone),
                "ratio": stat(ratios),
            }
        )
    return {"rows": rows}


def bench_command(options: BenchOptions, *, as_json: bool, out: Any = None) -> int:
    """Run the bench and print its table, or its JSON with `as_json`."""
    import json

    from ._report import render

    out = out or sys.stdout
    if not as_json and out.isatty() and sys.stderr.isatty():
        options = dataclasses.replace(options, progress=sys.stderr)
    result = run_bench(options)
    options.say("done\n")
    if as_json:
        out.write(json.dumps(result, indent=2) + "\n")
    else:
        out.write(render(result))
    return 0
