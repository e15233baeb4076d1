"""The `speed` section: what a run's options cost, how runs start by thousands, and
where the figures stand against their targets (issue 25).

The targets, as ratios of figures measured in the same bench run:

- time limits: CPU per chunk with `timeouts=` set over without, at most 1.05x;
- end to end: the agent's chunks a second over the bare loop's, at least 0.9x on Chat
  Completions and on the Responses API (from the e2e sections), and its CPU per chunk
  against the bare loop's (from this one);
- first chunk: the agent's time to its first chunk at most 0.1 ms over "openai post,
  raw bytes" (from the e2e section);
- idle memory: an idle run at most 0.9x the memory of an idle `create(stream=True)`
  stream of the `openai` client (tracemalloc, side by side).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._costs import cost_samples
from ._serve import Workload, workload_policy
from ._startup import idle_side_by_side, startup_curve

__all__ = ["speed_section", "targets"]


def _median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


async def speed_section(
    base_url: str,
    workload: Workload,
    runs: int,
    repetitions: int,
    counts: list[int],
    profile_count: int,
    backend: str,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Costs per chunk, the start-up curve and idle memory side by side."""
    say("speed: what timeouts and observers cost")
    costs = await cost_samples(base_url, workload_policy(workload), runs, repetitions)
    for wire in costs.values():
        samples = wire["us_per_chunk"]
        wire["ratios"] = {
            f"{kind}_over_agent": [
                a / b for a, b in zip(samples[kind], samples["agent"], strict=True)
            ]
            for kind in ("timeouts", "observers")
            if kind in samples
        }
        wire["ratios"]["bare_over_agent"] = [
            a / b for a, b in zip(samples["bare"], samples["agent"], strict=True)
        ]
    say(f"speed: start-up of {', '.join(map(str, counts))} idle runs")
    startup = await startup_curve(workload, counts, profile_count, backend)
    say("speed: idle memory side by side")
    idle = await idle_side_by_side(workload, counts[0], backend)
    return {"costs": costs, "startup": startup, "idle": idle}


def targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 25 that this bench run measured: value, bound, met."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float, bound: float, at_most: bool, unit: str = "x") -> None:
        met = value <= bound if at_most else value >= bound
        rows.append(
            {
                "target": name,
                "value": value,
                "bound": f"{'<=' if at_most else '>='} {bound:g}{unit}",
                "met": met,
                "unit": unit,
            }
        )

    speed = result.get("speed")
    if speed is not None:
        for wire, label in (("chat", "Chat Completions"), ("responses", "Responses API")):
            ratios = speed["costs"][wire]["ratios"]
            add(f"timeouts cost per chunk, {label}", _median(ratios["timeouts_over_agent"]),
                1.05, at_most=True)  # fmt: skip
            add(f"CPU per chunk: bare loop over agent, {label}",
                _median(ratios["bare_over_agent"]), 0.9, at_most=False)  # fmt: skip
        add("idle run memory over an idle openai stream", speed["idle"]["agent_over_sdk"], 0.9,
            at_most=True)  # fmt: skip
    e2e = result.get("e2e")
    if e2e is not None:
        rows_by_client = {row["client"]: row for row in e2e["rows"]}
        agent, post = rows_by_client["agent"], rows_by_client["post"]
        add("end to end over bare loop, Chat Completions",
            agent["ratio_to_bare"]["median"], 0.9, at_most=False)  # fmt: skip
        added = agent["added_first_token_ms"]["median"] - post["added_first_token_ms"]["median"]
        add("first chunk over openai post, raw bytes", added, 0.1, at_most=True, unit=" ms")
    responses = result.get("e2e_responses")
    if responses is not None:
        agent = next(row for row in responses["rows"] if row["client"] == "agent")
        add("end to end over bare loop, Responses API",
            agent["ratio_to_bare"]["median"], 0.9, at_most=False)  # fmt: skip
    return rows
