"""Round trips on the wire: what the request after a streamed turn carries back.

Every recorded case runs end to end through the command line against a scripted model
on loopback that serves the recorded chunks verbatim; the request that follows must carry
each `must_carry` path with its expected value, and none of the `must_not_carry` paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._roundtrip import CASES, Missing, case_params, replay_through_cli, resolve


def check_case(case: dict[str, Any], body: dict[str, Any]) -> None:
    """Each must_carry path has its expected value; each must_not_carry path is absent."""
    api = case["api"]
    choices = case.get("expected_any", {})
    for path in case["must_carry"]:
        try:
            value = resolve(body, path, api)
        except Missing:
            pytest.fail(f"{path} is missing from the request")
        if path in choices:
            assert value in choices[path], path
        else:
            assert value == case["expected"][path], path
    for path in case["must_not_carry"]:
        with pytest.raises(Missing):
            resolve(body, path, api)


@pytest.mark.parametrize("name", case_params("chat"))
def test_chat_case_round_trips_through_the_cli(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    bodies = replay_through_cli(case, tmp_path)
    check_case(case, bodies[case["run"]["check_request"]])


def test_deepseek_reasoning_goes_back_after_a_new_user_turn(tmp_path: Path) -> None:
    # DeepSeek: the reasoning of an assistant message that called a tool goes back in
    # every later request, later user turns included (here a second CLI invocation on
    # the same session).
    case = CASES["deepseek__chatlas-v4flash-tool-reasoning_content"]
    bodies = replay_through_cli(case, tmp_path, [case["run"]["prompts"][0], "And tomorrow?"])
    later = bodies[2]
    assert [m["role"] for m in later["messages"]][-1] == "user"
    assert later["messages"][-1]["content"] == "And tomorrow?"
    check_case(case, later)
    # The plain answer of the first turn streamed no reasoning: none is invented for it.
    answer = [m for m in later["messages"] if m["role"] == "assistant"][1]
    assert answer["content"] == "All done."
    assert "reasoning_content" not in answer


def test_path_syntax() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "a": {"b": [1, {"type": "x", "v": 2}]}},
            {"role": "assistant", "c": 3},
        ]
    }
    assert resolve(body, "a.b[0]") == 1
    assert resolve(body, "a.b[type=x].v") == 2
    assert resolve(body, "assistant[1].c") == 3
    for path in ("a.c", "a.b[2]", "a.b[type=y]", "assistant[2].c", "c"):
        with pytest.raises(Missing):
            resolve(body, path)
