"""Statement periods, cut at local midnights of each account's own timezone.

A period is identified by its first local day and cadence ("monthly": 2026-10-01 names October
2026, "daily": one day); the same key is the Dagster partition key. For an account in
Asia/Tokyo, October starts at 2026-09-30T15:00Z; for one in America/Los_Angeles at
2026-10-01T07:00Z. A period's statements can be rendered once the data is available past its end
in the *latest* of its accounts' timezones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from exports.errors import InvalidParameter
from exports.reports.relative import local_midnight

CADENCES = ("monthly", "daily")


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True)
class StatementPeriod:
    cadence: str
    start: date  # first local day
    end: date  # first local day after the period

    @classmethod
    def from_key(cls, key: str, cadence: str = "monthly") -> "StatementPeriod":
        """The period a partition key ("2026-10-01") names."""
        if cadence not in CADENCES:
            raise InvalidParameter(f"cadence must be one of {', '.join(CADENCES)}, got {cadence!r}",
                                   param="cadence")
        try:
            start = date.fromisoformat(key)
        except (TypeError, ValueError):
            raise InvalidParameter(f"a statement period is a date like 2026-10-01, got {key!r}",
                                   param="period") from None
        if cadence == "monthly":
            if start.day != 1:
                raise InvalidParameter(f"a monthly statement period starts on the 1st, got {key!r}",
                                       param="period")
            return cls(cadence, start, _next_month(start))
        return cls(cadence, start, start + timedelta(days=1))

    @property
    def key(self) -> str:
        return self.start.isoformat()

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}" if self.cadence == "monthly" else self.start.isoformat()

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """[start, end) as aware UTC instants: the local midnights in `timezone`."""
        zone = ZoneInfo(timezone)
        return local_midnight(self.start, zone), local_midnight(self.end, zone)

    def ends_by(self, timezones: Iterable[str]) -> datetime | None:
        """The instant the period has ended in every one of `timezones` (None: no timezones)."""
        ends = [self.bounds(tz)[1] for tz in set(timezones)]
        return max(ends) if ends else None


def months_between(first: str, last: str) -> list[StatementPeriod]:
    """Monthly periods from `first` to `last` inclusive, each given as YYYY-MM or YYYY-MM-01."""
    def month(value: str, param: str) -> date:
        text = value.strip()
        try:
            return date.fromisoformat(text + "-01" if len(text) == 7 else text).replace(day=1)
        except ValueError:
            raise InvalidParameter(f"{param} must be a month like 2026-10, got {value!r}",
                                   param=param) from None

    start, end = month(first, "--from"), month(last, "--to")
    if end < start:
        raise InvalidParameter("--to must not be before --from", param="--to")
    periods, day = [], start
    while day <= end:
        periods.append(StatementPeriod("monthly", day, _next_month(day)))
        day = _next_month(day)
    return periods
