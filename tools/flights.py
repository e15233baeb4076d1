"""`search_flights`: a slow, read-only search that reports progress and may start early."""

from __future__ import annotations

import hashlib

import anyio
from pydantic import BaseModel, Field

from agentstream import ToolContext, tool

__all__ = ["Flight", "search_flights"]

_AIRLINES = ("Aurora Air", "Blue Meridian", "Cobalt", "Delta Vega", "Estrela", "Fjord Wings")
_SECONDS_PER_AIRLINE = 0.15  # the simulated work: under a second in all


class Flight(BaseModel):
    """One fare found."""

    airline: str
    departs: str = Field(description="Local time, HH:MM.")
    hours: float
    price_eur: int


@tool(early=True, idempotent=True)
async def search_flights(origin: str, destination: str, ctx: ToolContext) -> list[Flight]:
    """Search flights between two cities (simulated offline: fares derived from the names).

    Args:
        origin: The city to fly from.
        destination: The city to fly to.
    """
    found: list[Flight] = []
    for number, airline in enumerate(_AIRLINES):
        ctx.progress(number / len(_AIRLINES), f"asking {airline}")
        await anyio.sleep(_SECONDS_PER_AIRLINE)
        digest = hashlib.sha256(f"{origin}|{destination}|{airline}".lower().encode()).digest()
        if digest[0] % 3:  # not every airline flies every route
            found.append(
                Flight(
                    airline=airline,
                    departs=f"{digest[1] % 24:02d}:{digest[2] % 4 * 15:02d}",
                    hours=round(1 + digest[3] / 20, 1),
                    price_eur=60 + digest[4] * 3,
                )
            )
    ctx.progress(1.0, f"{len(found)} fares found")
    return sorted(found, key=lambda flight: flight.price_eur)
