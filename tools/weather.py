"""`get_weather`: simulated weather, derived offline from the location's name."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from agentstream import ToolError, tool

__all__ = ["WEATHER_URL_ENV", "Weather", "get_weather", "offline_weather"]

WEATHER_URL_ENV = "AGENTSTREAM_WEATHER_URL"
"""Set it to a URL to try a live backend first (see `get_weather`)."""

Unit = Literal["celsius", "fahrenheit"]

_TIMEOUT = 2.0
_MAX_LOCATION = 200  # characters
_MAX_BODY = 64 * 1024  # bytes of a live answer
_CONDITIONS = (
    "sunny",
    "clear",
    "partly cloudy",
    "cloudy",
    "overcast",
    "light rain",
    "showers",
    "windy",
    "foggy",
    "thunderstorms",
)
# Typical mild-season values (°C, conditions) for a few cities people try first.
_KNOWN: dict[str, tuple[float, str]] = {
    "paris": (17.0, "partly cloudy"),
    "tokyo": (21.0, "clear"),
    "london": (13.0, "light rain"),
    "new york": (18.0, "sunny"),
    "lisbon": (22.0, "sunny"),
    "oslo": (9.0, "cloudy"),
    "berlin": (15.0, "overcast"),
    "rome": (23.0, "sunny"),
    "sydney": (20.0, "clear"),
    "cairo": (29.0, "sunny"),
    "san francisco": (16.0, "foggy"),
}


class Weather(BaseModel):
    """The weather at one place."""

    location: str
    temperature: float = Field(description="In `unit`, one decimal.")
    unit: Unit
    conditions: str
    humidity: int = Field(description="Relative humidity, percent.")
    wind_kph: float
    source: Literal["simulated", "live"]


@tool
def get_weather(
    location: Annotated[str, Field(max_length=_MAX_LOCATION)], unit: Unit = "celsius"
) -> Weather:
    """Get the current weather for a location: temperature, conditions, humidity and wind.
    The data is simulated offline from the location's name; it is not a real forecast.

    With `AGENTSTREAM_WEATHER_URL` set, a live backend is tried first (two seconds at
    most); on any failure the simulated data is returned.

    Args:
        location: A city or place name, e.g. "Paris".
        unit: The temperature unit.
    """
    url = os.environ.get(WEATHER_URL_ENV)
    if url:
        live = fetch_live_weather(url, location, unit)
        if live is not None:
            return live
    return offline_weather(location, unit)


def offline_weather(location: str, unit: Unit = "celsius") -> Weather:
    """The simulated weather for `location`: the same name always gives the same weather."""
    name = " ".join(location.split())
    if not name:
        raise ToolError("location is empty; give a city or place name, e.g. 'Paris'")
    key = name.casefold()
    digest = hashlib.sha256(key.encode()).digest()
    celsius, conditions = _KNOWN.get(
        key, (-5 + digest[0] % 380 / 10, _CONDITIONS[digest[1] % len(_CONDITIONS)])
    )
    return Weather(
        location=name,
        temperature=_convert(celsius, unit),
        unit=unit,
        conditions=conditions,
        humidity=30 + digest[2] % 61,
        wind_kph=round(digest[3] % 400 / 10, 1),
        source="simulated",
    )


def fetch_live_weather(
    url: str, location: str, unit: Unit, *, timeout: float = _TIMEOUT
) -> Weather | None:
    """Ask a live backend: `GET {url}?location=...&unit=...`; None on any failure.

    The backend answers a JSON object with `temperature` (in `unit`) and `conditions`,
    and optionally `humidity` and `wind_kph`. The work is bounded: each read waits at
    most `timeout` seconds, reading stops once `timeout` has passed in all, and an
    answer over 64 KiB is refused. (Name resolution follows the system's own limits.)
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return None  # never let the variable open files or other schemes
    query = urllib.parse.urlencode({"location": location, "unit": unit})
    separator = "&" if "?" in url else "?"
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(f"{url}{separator}{query}", timeout=timeout) as response:
            body = bytearray()
            while piece := response.read1(8192):
                body += piece
                if len(body) > _MAX_BODY or time.monotonic() > deadline:
                    return None
        data: Any = json.loads(body)
        return Weather(
            location=location,
            temperature=round(float(data["temperature"]), 1),
            unit=unit,
            conditions=str(data["conditions"]),
            humidity=int(data.get("humidity", 0)),
            wind_kph=float(data.get("wind_kph", 0.0)),
            source="live",
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        # OSError covers URLError, timeouts and refused connections: fall back offline.
        return None


def _convert(celsius: float, unit: Unit) -> float:
    return round(celsius * 9 / 5 + 32 if unit == "fahrenheit" else celsius, 1)
