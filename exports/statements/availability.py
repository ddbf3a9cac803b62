"""When a period's statements may be rendered: once the warehouse's data is available past the
period's end in the latest timezone involved (`exports.replication.data_available_end`, the
"data available up to" every report is checked against). Late data means wait, never render
from incomplete data; past `statement_data_deadline_hours` after that end, the wait is an alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from exports.replication import data_available_end
from exports.settings import Settings, get_settings
from exports.statements.periods import StatementPeriod


class DataNotAvailable(Exception):
    """The data is not yet available through the period's end: wait, render nothing."""

    def __init__(self, period: StatementPeriod, needed: datetime, available: datetime | None):
        self.period, self.needed, self.available = period, needed, available
        super().__init__(
            f"statements for {period.label} need data through {needed.isoformat()}; the data is "
            f"available through {available.isoformat() if available else 'nothing yet'}")


@dataclass(frozen=True)
class Readiness:
    period: StatementPeriod
    needed: datetime | None  # the period's end in the latest timezone (None: no accounts)
    available: datetime | None  # data_available_end
    deadline: datetime | None  # needed + statement_data_deadline_hours
    now: datetime

    @property
    def ready(self) -> bool:
        return self.needed is None or (self.available is not None and self.available >= self.needed)

    @property
    def late(self) -> bool:
        """Still waiting past the deadline: the alert condition."""
        return not self.ready and self.deadline is not None and self.now > self.deadline

    def describe(self) -> str:
        if self.needed is None:
            return f"no account is owed a statement for {self.period.label}"
        available = self.available.isoformat() if self.available else "nothing yet"
        if self.ready:
            return (f"data for {self.period.label} is available (through {available}; needed "
                    f"through {self.needed.isoformat()})")
        late = (f"LATE by {self.now - self.deadline} past the {self.deadline.isoformat()} deadline"
                if self.late else f"deadline {self.deadline.isoformat()}")
        return (f"waiting for data through {self.needed.isoformat()} to render the "
                f"{self.period.label} statements: available through {available} ({late})")


def readiness(period: StatementPeriod, timezones: Iterable[str], now: datetime,
              settings: Settings | None = None) -> Readiness:
    settings = settings or get_settings()
    needed = period.ends_by(timezones)
    deadline = needed + timedelta(hours=settings.statement_data_deadline_hours) if needed else None
    return Readiness(period, needed, data_available_end(settings), deadline, now)


def require_data(period: StatementPeriod, timezones: Iterable[str],
                 settings: Settings | None = None) -> datetime | None:
    """data_available_end, or DataNotAvailable when it stops short of the period's end."""
    settings = settings or get_settings()
    needed = period.ends_by(timezones)
    available = data_available_end(settings)
    if needed is not None and (available is None or available < needed):
        raise DataNotAvailable(period, needed, available)
    return available


def last_closed_month(now: datetime) -> StatementPeriod:
    """The month before `now`'s UTC month: the newest monthly partition (UTC month boundaries,
    as Dagster's MonthlyPartitionsDefinition cuts them; each account's own end is waited for)."""
    first = date(now.year, now.month, 1)
    previous = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    return StatementPeriod.from_key(previous.isoformat(), "monthly")
