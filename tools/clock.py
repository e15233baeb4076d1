"""`current_time`: the time now in an IANA time zone, via `zoneinfo`.

`zoneinfo` reads the system's time zone database (`/usr/share/zoneinfo` on Linux and
macOS); where there is none (Windows, slim containers) install the `tzdata` package.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any

from pydantic import Field

from agentstream import ToolError, tool

__all__ = ["current_time", "describe_time", "resolve_zone"]

_MAX_NAME = 100  # characters; the longest IANA name has 32
_EXAMPLES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")


@tool
def current_time(timezone: Annotated[str, Field(max_length=_MAX_NAME)] = "UTC") -> dict[str, Any]:
    """Get the current date and time in a time zone: ISO time, weekday and UTC offset.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris" or "UTC"; a city that
            names a zone ("Tokyo", "New York") works too.
    """
    zone = resolve_zone(timezone)
    return describe_time(dt.datetime.now(dt.timezone.utc), zone)


def describe_time(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """What `current_time` reports for the aware datetime `moment` seen in `zone`."""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")  # "+0900"
    return {
        "timezone": zone.key,
        "iso": local.isoformat(timespec="seconds"),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "weekday": local.strftime("%A"),
        "utc_offset": f"{offset[:3]}:{offset[3:]}",
    }


def resolve_zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone called `name`: an IANA name in any letter case, or a city that ends one."""
    if len(name) > _MAX_NAME:
        raise ToolError(f"timezone is longer than {_MAX_NAME} characters")
    wanted = "_".join(name.split())
    if not wanted:
        raise ToolError(f"timezone is empty; try one of {', '.join(_EXAMPLES)}")
    zones = zoneinfo.available_timezones()
    if not zones:
        raise ToolError(
            "no IANA time zone database is installed here; install the 'tzdata' package"
        )
    folded = wanted.casefold()
    matches = sorted(z for z in zones if z.casefold() == folded)
    if not matches:
        # "Tokyo" -> "Asia/Tokyo", "new york" -> "America/New_York"
        matches = sorted(z for z in zones if z.casefold().rpartition("/")[2] == folded)
    if not matches:
        raise ToolError(
            f"unknown time zone {name!r}; use an IANA name such as {', '.join(_EXAMPLES)}"
        )
    return zoneinfo.ZoneInfo(matches[0])
