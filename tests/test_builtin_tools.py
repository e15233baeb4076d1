"""The ready-made tools in `tools/`: weather, calculator, clock and trips."""

from __future__ import annotations

import datetime as dt
import math
import re
import socket
import threading
import zoneinfo
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tools
from agentstream import Tool, ToolArgumentsError, ToolContext, ToolError
from tools.calculator import MAX_EXPRESSION_LENGTH, calculate, evaluate
from tools.clock import current_time, describe_time, resolve_zone
from tools.trips import Itinerary, plan_trip
from tools.weather import WEATHER_URL_ENV, Weather, fetch_live_weather, get_weather, offline_weather


def context(name: str) -> ToolContext:
    return ToolContext(
        run_id="run_test", tool_call_id="call_1", tool_name=name, step=1, messages=()
    )


async def invoke(tool: Tool, arguments: dict[str, Any]) -> Any:
    """Validate and run a tool the way the agent loop does."""
    return await tool.invoke(tool.validate(arguments), context(tool.name))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the package -------------------------------------------------------------------------


def test_all_tools_are_tools_with_unique_names() -> None:
    names = [t.name for t in tools.ALL_TOOLS]
    assert names == [
        "get_weather", "calculate", "current_time", "plan_trip", "book_hotel", "compile_report"
    ]  # fmt: skip
    assert all(isinstance(t, Tool) for t in tools.ALL_TOOLS)
    assert sorted(tools.__all__) == tools.__all__


def test_tools_use_only_the_public_api() -> None:
    for path in Path(tools.__file__).parent.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"agentstream\._|from agentstream\.\w+ import", source), path.name


# --- weather -----------------------------------------------------------------------------


def test_weather_is_simulated_and_says_so() -> None:
    assert "simulated offline" in get_weather.description
    assert get_weather.parameters["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert get_weather.parameters["required"] == ["location"]


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("Paris", id="known-city"),
        pytest.param("Ouagadougou", id="hashed-city"),
        pytest.param("  new   york ", id="spacing-and-case"),
    ],
)
def test_offline_weather_is_deterministic_and_plausible(location: str) -> None:
    first, again = offline_weather(location), offline_weather(location)
    assert first == again
    assert first.source == "simulated"
    assert first.location == " ".join(location.split())
    assert -5 <= first.temperature <= 33
    assert 30 <= first.humidity <= 90
    assert 0 <= first.wind_kph < 40


def test_known_city_has_typical_values() -> None:
    weather = offline_weather("paris")
    assert (weather.temperature, weather.conditions) == (17.0, "partly cloudy")


def test_fahrenheit_is_converted() -> None:
    celsius = offline_weather("Tokyo")
    fahrenheit = offline_weather("Tokyo", "fahrenheit")
    assert fahrenheit.unit == "fahrenheit"
    assert fahrenheit.temperature == round(celsius.temperature * 9 / 5 + 32, 1)


def test_empty_location_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="location is empty"):
        offline_weather("   ")


def test_bad_unit_is_rejected_by_the_schema() -> None:
    with pytest.raises(ToolArgumentsError):
        get_weather.validate({"location": "Paris", "unit": "kelvin"})


@pytest.mark.anyio
async def test_unreachable_backend_falls_back_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEATHER_URL_ENV, f"http://127.0.0.1:{closed_port()}/weather")
    weather = await invoke(get_weather, {"location": "Oslo"})
    assert weather == offline_weather("Oslo")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file:///etc/passwd", id="file-scheme"),
        pytest.param("not a url", id="no-scheme"),
    ],
)
def test_backend_must_be_http(url: str) -> None:
    assert fetch_live_weather(url, "Oslo", "celsius") is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "source"),
    [
        pytest.param(b'{"temperature": 3.14, "conditions": "snow"}', "live", id="live"),
        pytest.param(b'{"conditions": "snow"}', "simulated", id="incomplete-answer"),
        pytest.param(b"<html>", "simulated", id="not-json"),
    ],
)
async def test_live_backend(monkeypatch: pytest.MonkeyPatch, body: bytes, source: str) -> None:
    seen: list[bytes] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            seen.append(await stream.receive())
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            await stream.send(head.encode() + body)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        monkeypatch.setenv(WEATHER_URL_ENV, f"http://127.0.0.1:{port}/now")
        tg.start_soon(listener.serve, answer)
        weather: Weather = await invoke(get_weather, {"location": "Oslo", "unit": "celsius"})
        tg.cancel_scope.cancel()
    assert weather.source == source
    assert seen[0].startswith(b"GET /now?location=Oslo&unit=celsius ")
    if source == "live":
        assert (weather.temperature, weather.conditions) == (3.1, "snow")


# --- calculator --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("(12 + 30) * 2", 84, id="parentheses"),
        pytest.param("2 ** 10", 1024, id="power"),
        pytest.param("2^10", 1024, id="caret-is-power"),
        pytest.param("7 // 2", 3, id="floor-division"),
        pytest.param("7 % 3", 1, id="modulo"),
        pytest.param("10 / 4", 2.5, id="true-division"),
        pytest.param("-3 + +2", -1, id="unary"),
        pytest.param("1.5 * 2", 3.0, id="float"),
        pytest.param("sqrt(16)", 4.0, id="sqrt"),
        pytest.param("pi", math.pi, id="pi"),
        pytest.param("log(8, 2)", 3.0, id="log-base"),
        pytest.param("factorial(5)", 120, id="factorial"),
        pytest.param("2 ** -1", 0.5, id="negative-exponent"),
        pytest.param("round(cos(0) + e, 3)", 3.718, id="nested-calls"),
        pytest.param("1+" * 99 + "1", 100, id="long-flat-sum"),
    ],
)
def test_calculate(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param("9**9**9", "exponent", id="tower"),
        pytest.param("10 ** 400", "too large", id="huge-power"),
        pytest.param("(2 ** 1000) ** 2", "too large", id="huge-base"),
        pytest.param("factorial(1000)", "factorial", id="huge-factorial"),
        pytest.param("factorial(factorial(6))", "factorial", id="nested-factorial"),
        pytest.param("1 / 0", "division by zero", id="zero-division"),
        pytest.param("sqrt(-1)", "cannot evaluate", id="domain"),
        pytest.param("(-8) ** 0.5", "complex", id="complex"),
        pytest.param("__import__('os')", "unknown function", id="import"),
        pytest.param("().__class__", "unsupported syntax", id="attribute"),
        pytest.param("x + 1", "unknown name", id="name"),
        pytest.param("'a' * 3", "only numbers", id="string"),
        pytest.param("True + 1", "only numbers", id="bool"),
        pytest.param("2 < 3", "unsupported syntax", id="comparison"),
        pytest.param("sqrt(1, 2)", "wrong number of arguments", id="arity"),
        pytest.param("1 +", "not a valid arithmetic expression", id="syntax"),
        pytest.param("", "empty", id="empty"),
        pytest.param("1+" * 150 + "1", "longer than", id="too-long"),
        pytest.param("-" * 150 + "1", "nested too deeply", id="too-deep"),
    ],
)
def test_calculate_refuses(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=re.escape(message)):
        evaluate(expression)


def test_calculate_returns_expression_and_result() -> None:
    assert calculate.function("(12 + 30) * 2") == {"expression": "(12 + 30) * 2", "result": 84}
    assert MAX_EXPRESSION_LENGTH == 200


_INTS = st.integers(min_value=-1000, max_value=1000).map(str)


@st.composite
def _sums(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(_INTS)
    left, right = draw(_sums(depth + 1)), draw(_sums(depth + 1))
    return f"({left} {draw(st.sampled_from(['+', '-', '*']))} {right})"


@given(_sums())
def test_calculate_agrees_with_python_on_integer_arithmetic(expression: str) -> None:
    # The generated strings hold only integers, + - * and parentheses.
    assert evaluate(expression) == eval(expression)


def _finishes(expression: str) -> Any:
    """Evaluate in a worker thread, as the agent does, giving it a minute at most.

    (A single huge integer operation holds the GIL, so an unbounded one still blocks
    until it ends: the calculator must refuse such work before starting it.)
    """
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(evaluate(expression))
        except ToolError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(60)
    assert outcome, f"{expression!r} is still computing"
    return outcome[0]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("round(5, -10**8)", 0, id="int-far-left"),
        pytest.param("round(10**300, -10**300)", 0, id="huge-places"),
        pytest.param("round(1234, -2)", 1200, id="int-near"),
        pytest.param("round(1.5, 10**8)", 1.5, id="float-far-right"),
        pytest.param("round(2.675, 2.0)", 2.67, id="whole-float-places"),
    ],
)
def test_round_bounds_its_work(expression: str, expected: float) -> None:
    assert _finishes(expression) == pytest.approx(expected)


def test_round_takes_whole_places() -> None:
    with pytest.raises(ToolError, match="whole number of digits"):
        evaluate("round(5, 1.5)")


_BIG = st.sampled_from(["10**300", "9**99", "-10**8", "10**8", "1e308", "factorial(100)", "2"])
_FUNCTIONS = st.sampled_from(["round", "factorial", "sqrt", "floor", "abs", "exp", "log"])


@st.composite
def _hostile(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(_BIG)
    left, right = draw(_hostile(depth + 1)), draw(_hostile(depth + 1))
    if draw(st.booleans()):
        return f"{draw(_FUNCTIONS)}({left}, {right})"
    return f"({left} {draw(st.sampled_from(['**', '*', '//', '%', '-']))} {right})"


@settings(max_examples=150, deadline=None)
@given(_hostile())
def test_hostile_expressions_end_in_a_bounded_number_or_a_tool_error(expression: str) -> None:
    outcome = _finishes(expression)
    if isinstance(outcome, float):
        assert math.isfinite(outcome)
    elif not isinstance(outcome, ToolError):
        assert abs(outcome) <= 10**300


def test_tool_arguments_are_bounded_before_any_work() -> None:
    with pytest.raises(ToolArgumentsError):
        get_weather.validate({"location": "x" * 201})
    with pytest.raises(ToolArgumentsError):
        current_time.validate({"timezone": "x" * 101})
    with pytest.raises(ToolError, match="longer than"):
        resolve_zone("x" * 101)


# --- clock -------------------------------------------------------------------------------


def test_the_zone_database_is_available() -> None:
    assert "Europe/Paris" in zoneinfo.available_timezones()


@pytest.mark.parametrize(
    ("name", "key"),
    [
        pytest.param("Europe/Paris", "Europe/Paris", id="iana"),
        pytest.param("europe/paris", "Europe/Paris", id="case"),
        pytest.param("UTC", "UTC", id="utc"),
        pytest.param("Tokyo", "Asia/Tokyo", id="city"),
        pytest.param("new york", "America/New_York", id="city-with-space"),
    ],
)
def test_resolve_zone(name: str, key: str) -> None:
    assert resolve_zone(name).key == key


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "Atlantis"])
def test_unknown_zone_lists_examples(name: str) -> None:
    with pytest.raises(ToolError, match="Europe/Paris"):
        resolve_zone(name)


def test_describe_time() -> None:
    moment = dt.datetime(2025, 1, 15, 12, 30, tzinfo=dt.timezone.utc)
    assert describe_time(moment, zoneinfo.ZoneInfo("Asia/Kolkata")) == {
        "timezone": "Asia/Kolkata",
        "iso": "2025-01-15T18:00:00+05:30",
        "date": "2025-01-15",
        "time": "18:00",
        "weekday": "Wednesday",
        "utc_offset": "+05:30",
    }


@pytest.mark.anyio
async def test_current_time_defaults_to_utc() -> None:
    now = await invoke(current_time, {})
    assert now["timezone"] == "UTC"
    assert now["utc_offset"] == "+00:00"
    moment = dt.datetime.fromisoformat(now["iso"])
    assert abs((dt.datetime.now(dt.timezone.utc) - moment).total_seconds()) < 60


# --- trips -------------------------------------------------------------------------------

_TRIP = {
    "destination": "Rome",
    "travellers": [{"name": "Alice", "age": 34}, {"name": "Tom", "age": 8}],
    "dates": {"start": "2025-06-01", "end": "2025-06-05"},
}


def test_plan_trip_schema_is_the_nested_model() -> None:
    schema = plan_trip.parameters
    assert schema["required"] == ["destination", "travellers", "dates"]
    assert set(schema["$defs"]) == {"DateRange", "Traveller"}


@pytest.mark.anyio
async def test_plan_trip() -> None:
    itinerary: Itinerary = await invoke(plan_trip, _TRIP)
    assert (itinerary.days, itinerary.nights) == (5, 4)
    assert itinerary.travellers == ["Alice", "Tom"]
    assert (
        itinerary.summary
        == "5 days in Rome for 2 travellers (1 under 12), 2025-06-01 to 2025-06-05"
    )
    assert itinerary.plan[0] == "Day 1 (2025-06-01, Sunday): arrive in Rome and settle in"
    assert itinerary.plan[-1].endswith("travel home")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"dates": {"start": "2025-06-05", "end": "2025-06-01"}}, "before", id="end"),
        pytest.param({"dates": {"start": "2025-01-01", "end": "2025-12-01"}}, "60", id="long"),
        pytest.param({"travellers": []}, "travellers", id="nobody"),
        pytest.param({"travellers": [{"name": "Al", "age": -1}]}, "age", id="age"),
        pytest.param({"destination": ""}, "destination", id="nowhere"),
    ],
)
def test_plan_trip_rejects(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolArgumentsError, match=message):
        plan_trip.validate({**_TRIP, **change})


def test_book_hotel_needs_approval_and_answers_offline() -> None:
    assert tools.book_hotel.needs_approval is True
    text = tools.book_hotel.function("Rome", 2, 1)
    assert text.startswith("Booked 2 nights in Rome for 1; confirmation ")
    assert text == tools.book_hotel.function("rome", 2, 1).replace("rome", "Rome")
