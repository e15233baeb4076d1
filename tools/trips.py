"""`plan_trip`: a tool whose one argument is a nested pydantic model."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, Field, model_validator

from agentstream import tool

__all__ = ["DateRange", "Itinerary", "Traveller", "Trip", "plan_trip"]

_MAX_DAYS = 60
_LISTED_DAYS = 7


class Traveller(BaseModel):
    """Someone on the trip."""

    name: str = Field(min_length=1, max_length=100, description="The traveller's name.")
    age: int = Field(ge=0, le=130, description="Age in years.")


class DateRange(BaseModel):
    """The first and last day of the trip."""

    start: date = Field(description="First day, YYYY-MM-DD.")
    end: date = Field(description="Last day, YYYY-MM-DD; not before start.")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"the end date {self.end} is before the start date {self.start}")
        if (self.end - self.start).days >= _MAX_DAYS:
            raise ValueError(f"a trip can last at most {_MAX_DAYS} days")
        return self


class Trip(BaseModel):
    """A trip to plan: where, who and when."""

    destination: str = Field(min_length=1, max_length=100, description="City or region.")
    travellers: list[Traveller] = Field(min_length=1, max_length=20)
    dates: DateRange


class Itinerary(BaseModel):
    """A planned trip."""

    destination: str
    days: int
    nights: int
    travellers: list[str]
    summary: str
    plan: list[str] = Field(description="One line per day (the first week at most).")


@tool
def plan_trip(trip: Trip) -> Itinerary:
    """Plan a trip: check the dates and travellers and return a day-by-day itinerary."""
    start, end = trip.dates.start, trip.dates.end
    days = (end - start).days + 1
    names = [t.name for t in trip.travellers]
    children = sum(1 for t in trip.travellers if t.age < 12)
    party = f"{len(names)} traveller{'s' if len(names) != 1 else ''}"
    if children:
        party += f" ({children} under 12)"
    plan: list[str] = []
    for offset in range(min(days, _LISTED_DAYS)):
        day = start + timedelta(days=offset)
        if offset == 0:
            what = f"arrive in {trip.destination} and settle in"
        elif offset == days - 1:
            what = "last walk, then travel home"
        else:
            what = ("old town and museums", "markets and food", "a day trip nearby")[offset % 3]
        plan.append(f"Day {offset + 1} ({day.isoformat()}, {day:%A}): {what}")
    return Itinerary(
        destination=trip.destination,
        days=days,
        nights=days - 1,
        travellers=names,
        summary=(
            f"{days} day{'s' if days != 1 else ''} in {trip.destination} for {party}, "
            f"{start.isoformat()} to {end.isoformat()}"
        ),
        plan=plan,
    )
