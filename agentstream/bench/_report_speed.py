"""The speed section and the targets as plain-text tables (no I/O)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from ._report import _table

__all__ = ["speed_lines"]

_READERS = {
    "bare": "bare httpx2 + json",
    "agent": "agentstream Agent",
    "timeouts": "Agent, timeouts= set",
    "observers": "Agent, one observer",
}


def _range(samples: list[float], spec: str = ".2f", unit: str = "") -> str:
    median = format(statistics.median(samples), spec)
    return f"{median}{unit} [{format(min(samples), spec)}-{format(max(samples), spec)}]"


def speed_lines(result: Mapping[str, Any]) -> list[str]:
    """The speed section's tables, then the targets'."""
    speed = result["speed"]
    lines = [*_costs(speed["costs"]), "", *_startup(speed["startup"]), ""]
    idle = speed["idle"]
    lines.append(
        f"Idle memory side by side ({idle['count']} at once, tracemalloc): an agent run "
        f"{idle['agent_bytes'] / 1024:.1f} KB, an openai create(stream=True) stream "
        f"{idle['sdk_bytes'] / 1024:.1f} KB: {idle['agent_over_sdk']:.2f}x"
        + (
            f" ({idle['agent_failed']} runs and {idle['sdk_failed']} streams failed)"
            if idle["agent_failed"] or idle["sdk_failed"]
            else ""
        )
    )
    if result.get("targets"):
        lines += ["", *_targets(result["targets"])]
    return lines


def _costs(costs: Mapping[str, Any]) -> list[str]:
    rows = []
    for wire, label in (("chat", "Chat Completions"), ("responses", "Responses API")):
        samples = costs[wire]["us_per_chunk"]
        ratios = costs[wire]["ratios"]
        for kind, values in samples.items():
            ratio = ratios.get(f"{kind}_over_agent")
            rows.append(
                [
                    label,
                    _READERS[kind],
                    _range(values),
                    _range(ratio, ".3f", "x") if ratio else "",
                ]
            )
    return [
        "What a run's options cost: this process's CPU us per chunk (or per event), runs "
        "one after another",
        *_table(["wire", "reader", "CPU us per chunk", "over the plain Agent"], rows),
    ]


def _startup(startup: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            str(row["count"]),
            row["reader"],
            f"{row['started']}" + (f" ({row['failed']} failed)" if row["failed"] else ""),
            f"{row['wall_seconds']:.2f}",
            f"{row['cpu_seconds']:.2f}",
            f"{row['cpu_ms_per_run']:.2f}",
            f"{row['rss_bytes_per_run'] / 1024:.1f}",
        ]
        for row in startup["rows"]
    ]
    header = ["idle", "reader", "started", "wall s", "CPU s", "CPU ms/run", "RSS KB/run"]
    lines = [
        "Start-up of idle runs at once, each count in a fresh process (started: the answer's "
        "headers arrived; RSS: growth of that process once all wait)",
        *_table(header, rows),
    ]
    row = startup["profile"]
    lines.append(
        f"Profile of {row['count']} agent runs starting on one client: {row['pool_share']:.0%} "
        "of the start-up in its connection pool (`_assign_requests_to_connections`, which "
        "looks at every connection whenever a request joins or leaves); spreading runs "
        f"over {startup['spread_clients']} clients divides that work by as many"
    )
    return lines


def _targets(rows: list[Mapping[str, Any]]) -> list[str]:
    table = [
        [
            row["target"],
            f"{row['value']:.3f}{row['unit']}",
            row["bound"],
            "met" if row["met"] else "NOT met",
        ]
        for row in rows
    ]
    return [
        "Targets of issue 25 (medians of this run)",
        *_table(["target", "today", "target", ""], table),
    ]
