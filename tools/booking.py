"""`book_hotel`: a tool with an effect in the world, so each call needs a person's approval."""

from __future__ import annotations

import hashlib

from pydantic import Field

from agentstream import tool

__all__ = ["book_hotel"]


@tool(needs_approval=True)
def book_hotel(
    city: str = Field(min_length=1, max_length=100),
    nights: int = Field(ge=1, le=30),
    guests: int = Field(default=1, ge=1, le=8),
) -> str:
    """Book a hotel room (in the offline world: nothing is charged). Needs approval.

    Args:
        city: The city to stay in, e.g. "Rome".
        nights: How many nights, 1 to 30.
        guests: How many guests, 1 to 8.
    """
    code = hashlib.sha256(f"{city.lower()}|{nights}|{guests}".encode()).hexdigest()[:8].upper()
    plural = "s" if nights > 1 else ""
    return f"Booked {nights} night{plural} in {city} for {guests}; confirmation {code}."
