"""The bench's figures as plain-text tables (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render"]


def _stat(value: Mapping[str, float] | None, spec: str = ".2f", unit: str = "") -> str:
    """`median [min-max]`."""
    if value is None:
        return "n/a"
    low, high = format(value["min"], spec), format(value["max"], spec)
    return f"{format(value['median'], spec)}{unit} [{low}-{high}]"


def _size(size: int) -> str:
    return f"{size // 1048576} MB" if size >= 1048576 else f"{size // 1024} KB"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return [line.rstrip() for line in lines]


def render(result: Mapping[str, Any]) -> str:
    """Every section present in `result`, as text tables."""
    meta = result["meta"]
    lines = [
        f"agentstream bench, {meta['date']}: Python {meta['python']}, {meta['cpus']} CPUs, "
        f"openai {meta['openai']}, {meta['backend']}",
        f"median [min-max] of {meta['repetitions']} repetitions; ratios are per repetition",
    ]
    if "assembly" in result:
        lines += ["", *_assembly(result["assembly"])]
    if "output" in result:
        lines += ["", *_output(result["output"])]
    if "e2e" in result:
        lines += ["", *_e2e(result["e2e"])]
    if "e2e_responses" in result:
        lines += ["", *_e2e_responses(result["e2e_responses"])]
    if "scale" in result:
        lines += ["", *_scale(result["scale"])]
    if "tools" in result:
        lines += ["", *_tools(result["tools"])]
    if "early" in result:
        lines += ["", *_early(result["early"])]
    if "speed" in result:
        from ._report_speed import speed_lines  # which uses this module's tables

        lines += ["", *speed_lines(result)]
    return "\n".join(lines) + "\n"


def _assembly(section: Mapping[str, Any]) -> list[str]:
    rows, notes = [], []
    for row in section["rows"]:
        rows.append(
            [
                _size(row["arguments_bytes"]),
                str(row["chunks"]),
                _stat(row["minimal_us_per_chunk"]),
                _stat(row["agentstream_us_per_chunk"]),
                _stat(row["sdk_state_us_per_chunk"], ".1f"),
                _stat(row["agentstream_over_minimal"], ".1f", "x"),
                _stat(row["sdk_state_over_agentstream"], ".0f", "x"),
            ]
        )
        if not row["sdk_state_whole_stream"]:
            notes.append(f"{_size(row['arguments_bytes'])}: {row['sdk_state_chunks_fed']}")
    header = ["arguments", "chunks", "minimal", "agentstream", "SDK state",
              "agentstream/minimal", "SDK/agentstream"]  # fmt: skip
    lines = [
        "Assembly alone, pre-decoded chunks (us per chunk; arguments in 4-character pieces)",
        *_table(header, rows),
    ]
    if notes:
        lines.append(
            "SDK state cut short after its time budget, at chunks: "
            + ", ".join(notes)
            + " (its cost per chunk grows with the arguments, so this flatters it)"
        )
    return lines


def _output(section: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            _size(row["answer_bytes"]),
            str(row["chunks"]),
            str(row["partial_values"]),
            _stat(row["assembler_us_per_chunk"]),
            _stat(row["typed_us_per_chunk"]),
            _stat(row["added_us_per_chunk"]),
        ]
        for row in section["rows"]
    ]
    header = ["answer", "chunks", "partial values", "assembler", "with typed output", "added"]
    return [
        "Typed output, pre-decoded chunks (us per chunk; a list[Record] answer in 4-character "
        "pieces: partial parse, completed entries validated once, the whole answer at the end)",
        *_table(header, rows),
    ]


def _e2e(section: Mapping[str, Any]) -> list[str]:
    names = {
        "bare": "bare httpx2 + json",
        "sdk": "openai stream=True",
        "post": "openai post, raw bytes",
        "agent": "agentstream Agent",
    }
    rows = [
        [
            names[row["client"]],
            _stat(row["chunks_per_second"], ".0f"),
            _stat(row["ratio_to_bare"], ".2f", "x"),
            _stat(row["first_token_ms"], ".2f"),
            _stat(row["added_first_token_ms"], ".2f"),
            _stat(row["client_cpu_share"], ".2f"),
            _stat(row["server_cpu_share"], ".2f"),
        ]
        for row in section["rows"]
    ]
    header = ["client", "chunks/s", "vs bare", "first token ms", "added ms",
              "client CPU", "server CPU"]  # fmt: skip
    return [
        f"End to end over loopback, one run after another ({section['chunks_per_run']} chunks "
        f"per run in 2 requests, {section['runs_per_repetition']} runs per repetition; "
        "CPU in cores)",
        *_table(header, rows),
    ]


def _e2e_responses(section: Mapping[str, Any]) -> list[str]:
    names = {
        "bare": "bare httpx2 + json",
        "sdk": "openai responses.create(stream=True)",
        "agent": "agentstream Agent(api='responses')",
    }
    rows = [
        [
            names[row["client"]],
            _stat(row["events_per_second"], ".0f"),
            _stat(row["ratio_to_bare"], ".2f", "x"),
            _stat(row["us_per_event"], ".2f"),
        ]
        for row in section["rows"]
    ]
    return [
        f"Responses API end to end over loopback ({section['events_per_run']} events per run "
        f"in 2 requests, {section['runs_per_repetition']} runs per repetition)",
        *_table(["client", "events/s", "vs bare", "us/event"], rows),
    ]


def _scale(section: Mapping[str, Any]) -> list[str]:
    rows = []
    for row in section["rows"]:
        bare, agent = row["bare"], row["agent"]
        rows.append(
            [
                str(row["runs"]),
                _stat(bare["chunks_per_second"], ".0f"),
                _stat(agent["chunks_per_second"], ".0f"),
                _stat(row["agent_over_bare"], ".2f", "x"),
                f"{bare['first_token_p50_ms']['median']:.1f} / "
                f"{bare['first_token_p99_ms']['median']:.1f}",
                f"{agent['first_token_p50_ms']['median']:.1f} / "
                f"{agent['first_token_p99_ms']['median']:.1f}",
                _stat(agent["server_cpu_share"], ".2f"),
            ]
        )
    header = ["runs", "bare chunks/s", "agent chunks/s", "agent/bare",
              "bare first ms p50/p99", "agent first ms p50/p99", "server CPU (agent)"]  # fmt: skip
    memory = section["idle_memory"]
    per_run = memory["tracemalloc_bytes_per_run"]
    return [
        "Scale: K concurrent runs in one process (first token: medians of p50 and p99)",
        *_table(header, rows),
        f"Idle agent run (waiting for its first chunk, {memory['idle_runs']} at once): "
        f"{per_run / 1024:.1f} KB allocated (tracemalloc), "
        f"{memory['rss_bytes_per_run'] / 1024:.1f} KB RSS; "
        f"{memory['runs_per_gb_tracemalloc'] or 0:,} runs per GB",
    ]


def _tools(section: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            row["tools"],
            str(row["calls"]),
            f"{row['slowest_seconds']:.3f}",
            _stat(row["parallel_wall_seconds"], ".3f"),
            _stat(row["slowest_alone_seconds"], ".3f"),
            _stat(row["ratio"], ".2f", "x"),
        ]
        for row in section["rows"]
    ]
    header = ["tools", "calls", "slowest s", "parallel wall s", "slowest alone s", "ratio"]
    return ["Parallel I/O-bound tool calls (first start to last end)", *_table(header, rows)]


def _early(section: Mapping[str, Any]) -> list[str]:
    scenario, off, on = section["scenario"], section["off"], section["on"]
    rows = [
        [
            f"{row_off['call']} ({'slow' if row_off['call'] == 0 else 'fast'})",
            f"{row_off['start_lag_from_last_byte_ms']:.2f}",
            f"{row_off['result_after_request_ms']:.1f}",
            f"{row_on['start_lag_from_last_byte_ms']:.2f}",
            f"{row_on['start_lag_from_final_ms']:.2f}",
            f"{row_on['result_after_request_ms']:.1f}",
        ]
        for row_off, row_on in zip(off["calls"], on["calls"], strict=True)
    ]
    header = ["call", "off: start lag ms", "off: result ms", "on: start lag ms",
              "on: lag after final ms", "on: result ms"]  # fmt: skip
    return [
        f"Early tool starts: {scenario['calls']} calls then text, {scenario['chunks']} chunks "
        f"at {scenario['tokens_per_second']:g}/s; slow tool {scenario['slow_tool_ms']:.0f} ms, "
        f"fast {scenario['fast_tool_ms']:.0f} ms; medians of {scenario['runs_per_mode']} runs "
        "per mode (start lag: from the call's last argument piece; after final: from the "
        "chunk that moved past it; result: from the request)",
        *_table(header, rows),
        f"step wall time: off {off['step_wall_ms']:.1f} ms, on {on['step_wall_ms']:.1f} ms "
        f"({section['wall_reduction']:.0%} less); floor (max of last piece + tool time) "
        f"{on['floor_ms']:.1f} ms, on is {on['over_floor_ms']:.2f} ms above it; "
        f"median start lag after final {on['start_lag_from_final_median_ms']:.3f} ms",
    ]
