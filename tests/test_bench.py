"""`python -m agentstream bench` runs, and says what it measured (no timing is asserted)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from agentstream.bench._report import render
from agentstream.cli import main


def stats(node: Any) -> Iterator[Mapping[str, float]]:
    """Every median/min/max summary in the result."""
    if isinstance(node, Mapping):
        if set(node) == {"median", "min", "max"}:
            yield node
        else:
            for value in node.values():
                yield from stats(value)
    elif isinstance(node, list):
        for value in node:
            yield from stats(value)


def test_quick_bench_reports_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"meta", "assembly", "output", "e2e", "scale", "tools", "speed", "targets"} <= set(
        result
    )

    output = result["output"]["rows"]
    assert [row["answer_bytes"] for row in output] == [1024]
    assert all(row["chunks"] > 256 and row["partial_values"] > 0 for row in output)

    assembly = result["assembly"]["rows"]
    assert [row["arguments_bytes"] for row in assembly] == [1024]
    assert all(row["chunks"] > 256 for row in assembly)

    e2e = {row["client"]: row for row in result["e2e"]["rows"]}
    assert set(e2e) == {"bare", "sdk", "post", "agent"}
    assert result["e2e"]["chunks_per_run"] > 0
    responses = {row["client"]: row for row in result["e2e_responses"]["rows"]}
    assert set(responses) == {"bare", "sdk", "agent"}
    assert result["e2e_responses"]["events_per_run"] > 0
    assert responses["agent"]["events_per_second"]["median"] > 0
    assert e2e["bare"]["ratio_to_bare"]["median"] == pytest.approx(1.0)

    scale = result["scale"]
    assert [row["runs"] for row in scale["rows"]] == [1, 4]
    assert scale["idle_memory"]["tracemalloc_bytes_per_run"] > 0

    assert [row["calls"] for row in result["tools"]["rows"]] == [8, 8]

    summaries = list(stats(result))
    assert len(summaries) > 20
    for summary in summaries:
        assert summary["min"] <= summary["median"] <= summary["max"]
    may_be_zero = {id(s) for s in _differences(result)}
    assert all(s["min"] > 0 for s in summaries if id(s) not in may_be_zero)

    check_speed(result)

    text = render(result)
    titles = (
        "Assembly alone", "Typed output", "End to end", "Scale", "Parallel I/O-bound",
        "What a run's options cost", "Start-up of idle runs", "Targets of issue 25",
    )  # fmt: skip
    for title in titles:
        assert title in text


def check_speed(result: Mapping[str, Any]) -> None:
    """The speed section measured every reader, count and target it names."""
    speed = result["speed"]
    for wire in ("chat", "responses"):
        costs = speed["costs"][wire]
        assert costs["chunks_per_run"] > 0
        assert set(costs["us_per_chunk"]) == {"bare", "agent", "timeouts", "observers"}
        assert all(v > 0 for values in costs["us_per_chunk"].values() for v in values)
        assert set(costs["ratios"]) == {
            "timeouts_over_agent", "observers_over_agent", "bare_over_agent"
        }  # fmt: skip
    rows = speed["startup"]["rows"]
    assert [(row["count"], row["reader"]) for row in rows] == [
        (count, reader)
        for count in (50, 100, 200)
        for reader in ("sdk", "agent", "agent, 10 clients")
    ]
    assert all(row["started"] == row["count"] and row["cpu_seconds"] > 0 for row in rows)
    assert 0 < speed["startup"]["profile"]["pool_share"] < 1
    idle = speed["idle"]
    assert idle["agent_bytes"] > 0
    assert idle["sdk_bytes"] > 0
    assert idle["agent_over_sdk"] == idle["agent_bytes"] / idle["sdk_bytes"]
    names = [row["target"] for row in result["targets"]]
    assert len(set(names)) == len(names) == 8
    assert all(isinstance(row["met"], bool) for row in result["targets"])


def _differences(result: Mapping[str, Any]) -> list[Mapping[str, float]]:
    """Figures that may be zero or negative: differences, and CPU read in clock ticks."""
    found: list[Mapping[str, float]] = []
    for row in result["e2e"]["rows"]:
        found += [row["added_first_token_ms"], row["server_cpu_share"]]
    for row in result["scale"]["rows"]:
        found += [row["bare"]["server_cpu_share"], row["agent"]["server_cpu_share"]]
    found += [row["added_us_per_chunk"] for row in result["output"]["rows"]]
    return [s for s in found if s is not None]


def test_bench_on_trio_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--backend", "trio", "--only", "e2e,tools"]) == 0
    text = capsys.readouterr().out
    assert "End to end" in text
    assert "Parallel I/O-bound" in text
    assert "Assembly" not in text


def test_unknown_section_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--only", "warp"])
    assert exit_info.value.code == 2
    assert "choose among" in capsys.readouterr().err


def test_the_early_section_compares_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--json", "--only", "early"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"meta", "early"}
    early = result["early"]
    assert early["scenario"]["calls"] == 4
    for mode in ("off", "on"):
        rows = early[mode]["calls"]
        assert [row["call"] for row in rows] == [0, 1, 2, 3]
        # The stream has moved past a call after its last piece came: never before it.
        assert all(
            row["start_lag_from_last_byte_ms"] >= row["start_lag_from_final_ms"] for row in rows
        )
        assert early[mode]["step_wall_ms"] >= early[mode]["floor_ms"] > 0
    assert "Early tool starts" in render(result)


def test_progress_goes_to_the_terminal_only() -> None:
    import io

    from agentstream.bench._main import BenchOptions, bench_command, run_bench

    said = io.StringIO()
    run_bench(BenchOptions(quick=True, sections=("assembly", "tools"), progress=said))
    assert "bench: assembly, stream 1 of 1" in said.getvalue()
    assert "bench: tools, threads" in said.getvalue()
    # Piped output (not a terminal): no progress at all, only the table.
    out = io.StringIO()
    assert (
        bench_command(BenchOptions(quick=True, sections=("assembly",)), as_json=True, out=out) == 0
    )
    assert out.getvalue().lstrip().startswith("{")
