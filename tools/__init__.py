"""Ready-made tools for demos and tests, built only on agentstream's public API.

Nothing here calls the network unless asked to: `get_weather` simulates its data
offline (see `WEATHER_URL_ENV` for a live backend), `calculate` is a safe arithmetic
evaluator, `current_time` reads the local time zone database, `plan_trip` shows a
tool whose argument is a nested pydantic model, `book_hotel` a tool with an effect,
whose calls each wait for a person's approval, and `compile_report` a slow tool that
reports its progress and may start early (`@tool(early=True)`).
"""

from __future__ import annotations

from agentstream import Tool

from .booking import book_hotel as book_hotel
from .calculator import calculate as calculate
from .clock import current_time as current_time
from .reports import compile_report as compile_report
from .trips import plan_trip as plan_trip
from .weather import get_weather as get_weather

__all__ = [
    "ALL_TOOLS",
    "book_hotel",
    "calculate",
    "compile_report",
    "current_time",
    "get_weather",
    "plan_trip",
]

ALL_TOOLS: tuple[Tool, ...] = (
    get_weather, calculate, current_time, plan_trip, book_hotel, compile_report
)  # fmt: skip
"""Every tool above, ready to give to an `Agent`."""
