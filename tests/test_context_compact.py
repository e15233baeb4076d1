"""The compacted view of a conversation (`context/_compact`), without I/O: what it may
change, what it never touches, and that it gets within the budget when it can."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentstream import CharCounter, ContextPolicy, SetupError
from agentstream._exceptions import ModelError, StreamError
from agentstream.context._compact import Summary, Trim, compact
from agentstream.context._summary import summary_request, too_long


def _weigh(message: Mapping[str, Any]) -> int:
    return len(json.dumps(message)) // 4 + 1


def _conversation(sizes: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Instructions, a task, then turns: `("tools", n)` a call with n results of growing
    size, `("text", n)` an assistant text, `("user", n)` a user message."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You help."},
        {"role": "user", "content": "The task."},
    ]
    for turn, (kind, n) in enumerate(sizes):
        if kind == "tools":
            ids = [f"c{turn}_{k}" for k in range(n)]
            calls = [{"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}
                     for i in ids]  # fmt: skip
            messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            messages += [
                {"role": "tool", "tool_call_id": i, "content": "x" * (300 * (k + 1) + turn)}
                for k, i in enumerate(ids)
            ]
        else:
            role = "assistant" if kind == "text" else "user"
            messages.append({"role": role, "content": f"{kind} {turn} " + "y" * 40 * n})
    return messages


def _paired(messages: list[dict[str, Any]]) -> bool:
    waiting: list[str] = []
    for message in messages:
        if message.get("role") == "tool":
            if not waiting or message["tool_call_id"] != waiting.pop(0):
                return False
        elif waiting:
            return False
        else:
            waiting = [call["id"] for call in message.get("tool_calls") or ()]
    return not waiting


_TURNS = st.lists(
    st.tuples(st.sampled_from(["tools", "tools", "text", "user"]), st.integers(1, 3)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(turns=_TURNS, limit=st.integers(50, 4000), keep=st.integers(0, 300), summarise=st.booleans())
def test_the_view_keeps_pairs_and_never_touches_the_protected(
    turns: list[tuple[str, int]], limit: int, keep: int, summarise: bool
) -> None:
    messages = _conversation(turns)
    snapshot = json.dumps(messages)
    trim = Trim()
    for _ in range(2):  # a second request under the trim the first one left
        done = compact(
            messages, trim, _weigh, overhead=10, limit=limit, target=int(limit * 0.75),
            keep_chars=keep, summarise=summarise,
        )  # fmt: skip
        view = done.view
        assert json.dumps(messages) == snapshot  # the conversation itself is never changed
        assert _paired(view)
        assert view[0] == messages[0]
        assert messages[1] in view  # the task
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        assert messages[last_user] in view
        # The last group reaches the model whole.
        start = max(i for i, m in enumerate(messages) if m["role"] != "tool")
        assert view[-(len(messages) - start) :] == messages[start:]
        assert done.tokens_after <= done.tokens_before
        if done.summarise is None:
            # Within the limit, or nothing left to trim: every older result is dropped.
            older = [m for m in view[: -(len(messages) - start)] if m["role"] == "tool"]
            assert (
                done.tokens_before <= limit
                or done.tokens_after <= int(limit * 0.75)
                or all(
                    "was dropped" in m["content"] or len(m["content"]) <= keep + 80 for m in older
                )
            )
        else:
            begin, end = done.summarise
            assert summarise
            assert 1 <= begin < end <= start
            assert messages[end - 1]["role"] != "assistant" or not messages[end - 1].get(
                "tool_calls"
            )
            trim = Trim(done.trim.shorten_before, done.trim.drop_before, Summary(end, "S."))
            continue
        trim = done.trim


def test_a_view_within_the_limit_is_the_conversation() -> None:
    messages = _conversation([("tools", 2), ("text", 1)])
    done = compact(
        messages, Trim(), _weigh, overhead=0, limit=10_000, target=7_500, keep_chars=100,
        summarise=True,
    )  # fmt: skip
    assert done.view == messages
    assert not done.changed
    assert done.summarise is None


def test_results_are_shortened_then_dropped_oldest_first_with_a_note() -> None:
    messages = _conversation([("tools", 1), ("tools", 1), ("tools", 1), ("tools", 1)])
    full = compact(
        messages, Trim(), _weigh, overhead=0, limit=10_000, target=10_000, keep_chars=50,
        summarise=False,
    ).tokens_before  # fmt: skip
    done = compact(
        messages, Trim(), _weigh, overhead=0, limit=full - 1, target=full - 20, keep_chars=50,
        summarise=False,
    )  # fmt: skip
    tools = [m["content"] for m in done.view if m["role"] == "tool"]
    assert (done.shortened, done.dropped) == (1, 0)
    assert tools[0].startswith("x" * 50 + "\n[agentstream: the last")
    assert tools[1:] == [m["content"] for m in messages if m["role"] == "tool"][1:]
    tight = compact(
        messages, done.trim, _weigh, overhead=0, limit=1, target=1, keep_chars=50,
        summarise=False,
    )  # fmt: skip
    notes = [m["content"] for m in tight.view if m["role"] == "tool"]
    assert all("was dropped" in note for note in notes[:-1])
    assert notes[-1] == messages[-1]["content"]  # the step just finished
    assert tight.tokens_before == done.tokens_after  # the earlier trim still holds


def test_a_summary_stands_for_the_oldest_turns_below_the_task() -> None:
    messages = _conversation([("tools", 1)] * 6)
    done = compact(
        messages, Trim(), _weigh, overhead=0, limit=300, target=200, keep_chars=0,
        summarise=True,
    )  # fmt: skip
    assert done.summarise is not None
    _, end = done.summarise
    after = compact(
        messages, Trim(summary=Summary(end, "What happened.")), _weigh, overhead=0,
        limit=10_000, target=10_000, keep_chars=0, summarise=True,
    )  # fmt: skip
    assert [m["role"] for m in after.view[:3]] == ["system", "user", "user"]
    assert after.view[1]["content"] == "The task."
    assert after.view[2]["content"].endswith("\nWhat happened.")
    assert after.view[3:] == messages[end:]


def test_the_summary_request_is_plain_text_without_tools() -> None:
    messages = _conversation([("tools", 1)])
    fields, conversation = summary_request(
        {"temperature": 0, "tools": [], "response_format": {}, "extra_headers": {"a": "b"}},
        "Summarise.", "Before.", messages[1:], share=60,
    )  # fmt: skip
    assert fields == {"temperature": 0, "extra_headers": {"a": "b"}}
    assert conversation[0] == {"role": "system", "content": "Summarise."}
    text = conversation[1]["content"]
    assert "Before." in text
    assert "[called f (c0_0) with {}]" in text
    assert "characters cut]" in text


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            ModelError(
                "the server answered 400: x",
                status_code=400,
                body={"code": "context_length_exceeded"},
            ),
            True,
            id="code",
        ),
        pytest.param(
            ModelError(
                "the server answered 400: This model's maximum context length is 8192",
                status_code=400,
            ),
            True,
            id="openai-message",
        ),
        pytest.param(
            ModelError("the server answered 400: prompt is too long", status_code=400),
            True,
            id="prompt-too-long",
        ),
        pytest.param(
            StreamError("response failed", body={"error": {"code": "context_length_exceeded"}}),
            True,
            id="responses-failed",
        ),
        pytest.param(
            ModelError("the server answered 503: context length", status_code=503),
            False,
            id="server-error",
        ),
        pytest.param(
            ModelError("the server answered 400: bad tool", status_code=400),
            False,
            id="other-400",
        ),
    ],
)
def test_a_refusal_as_too_long_is_recognised(error: Any, expected: bool) -> None:
    assert too_long(error) is expected


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_tokens": 0}, id="no-budget"),
        pytest.param({"max_tokens": 100, "target": 2.0}, id="target"),
        pytest.param({"max_tokens": 100, "keep_chars": -1}, id="keep"),
        pytest.param({"max_tokens": 100, "counter": object()}, id="counter"),
    ],
)
def test_a_bad_policy_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(SetupError):
        ContextPolicy(**options)


def test_the_default_counter_is_about_four_characters_a_token() -> None:
    message = {"role": "user", "content": "x" * 400}
    assert 100 <= CharCounter().count([message]) <= 110
    assert CharCounter(2).count([message]) >= 200


def test_a_result_shortened_then_dropped_counts_once() -> None:
    messages = _conversation([("tools", 1)] * 4)
    done = compact(
        messages, Trim(), _weigh, overhead=0, limit=1, target=1, keep_chars=50, summarise=False
    )
    assert (done.shortened, done.dropped) == (0, 3)
