"""The accounts statements are owed to, read from the source database (the platform's own list,
so an account appears in the statements of the first period it existed in).

An account gets a statement for a period when it was created before the period's end in its
timezone. The run renders only once the warehouse's data covers that end, so every such account
and its activity has been replicated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from exports import db
from exports.settings import Settings, get_settings
from exports.statements.periods import StatementPeriod
from exports.statements.shards import shard_of


@dataclass(frozen=True)
class StatementAccount:
    id: str
    timezone: str
    email: str | None
    created_at: datetime

    def owed(self, period: StatementPeriod) -> bool:
        return self.created_at < period.bounds(self.timezone)[1]


def list_accounts(settings: Settings | None = None, *, ids: Iterable[str] | None = None
                  ) -> list[StatementAccount]:
    """Every account (or those with `ids`), ordered by id."""
    sql = "SELECT id, timezone, email, created_at FROM accounts"
    args: list = []
    if ids is not None:
        sql += " WHERE id = ANY(%s)"
        args.append(list(ids))
    with db.connect("source", settings or get_settings()) as conn:
        rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    return [StatementAccount(*row) for row in rows]


def timezones(settings: Settings | None = None) -> set[str]:
    """The distinct timezones of all accounts (what the schedule waits on)."""
    with db.connect("source", settings or get_settings()) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT timezone FROM accounts")}


def accounts_owed(accounts: Iterable[StatementAccount], period: StatementPeriod,
                  shard: int | None = None) -> list[StatementAccount]:
    return [a for a in accounts if a.owed(period) and (shard is None or shard_of(a.id) == shard)]
