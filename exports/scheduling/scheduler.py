"""The scheduler: turns due template schedules into report_requests rows, exactly once.

`schedule_due_reports(now=...)` is a pure function of the clock it is given (tests pass a
controlled clock; the Dagster sensor passes the wall clock). For each enabled, scheduled template
it computes every cron due time in (last_scheduled_for, now] *in the template's timezone* — so
"0 6 * * *" in Europe/Berlin is 06:00 local in summer (04:00 UTC) and winter (05:00 UTC) — and
inserts one request per due time with `INSERT ... ON CONFLICT (template_id, scheduled_for) DO
NOTHING`, advancing last_scheduled_for/next_run_at in the same transaction. A second tick, a
second scheduler process or a restart therefore creates nothing new.

Scheduled requests respect the account's pending cap (settings.max_pending_per_account), counted
under the same per-account lock as API creates: a due time that does not fit is deferred, not
dropped — the template's deferred_reason says so, next_run_at is the retry
(settings.schedule_deferral_retry_seconds) and the request, for its original due time, is created
once the account has room.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from exports import db
from exports.requests import store
from exports.settings import Settings, get_settings

# With catch_up='all' a long outage of a frequent schedule could mean thousands of due times;
# one tick creates at most this many per template and the next tick continues from there.
MAX_DUE_TIMES_PER_TICK = 500


def _localize(naive_local: datetime, tz: ZoneInfo) -> datetime:
    """A local wall time as an aware UTC instant. Ambiguous times (autumn fall-back) take the
    first occurrence; times that do not exist (spring gap) shift forward by the gap, as zoneinfo
    does for fold=0 — so a 02:30 job still runs once on the spring-forward day."""
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def due_times_between(cron: str, timezone: str, after: datetime, until: datetime,
                      *, limit: int = MAX_DUE_TIMES_PER_TICK) -> list[datetime]:
    """Cron due times (aware, UTC) in (after, until], evaluated on the wall clock of `timezone`."""
    return list(_iter_due_times(cron, timezone, after, until, limit))


def _iter_due_times(cron: str, timezone: str, after: datetime, until: datetime,
                    limit: int) -> Iterator[datetime]:
    tz = ZoneInfo(timezone)
    # Walk the cron on naive local wall time (croniter then never sees an offset change), start
    # an hour early so a DST shift cannot make us miss a time just after `after`, and filter in UTC.
    start_local = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=1)
    walker = croniter(cron, start_local)
    produced = 0
    last: datetime | None = None
    while produced < limit:
        due = _localize(walker.get_next(datetime), tz)
        if due > until:
            return
        if due <= after or due == last:
            continue
        last = due
        produced += 1
        yield due


def latest_due_time(cron: str, timezone: str, after: datetime, until: datetime) -> datetime | None:
    """The most recent due time in (after, until], or None."""
    tz = ZoneInfo(timezone)
    # An hour past `until` in local time so DST cannot hide the latest one; filter in UTC.
    walker = croniter(cron, until.astimezone(tz).replace(tzinfo=None) + timedelta(hours=1, minutes=1))
    while True:
        due = _localize(walker.get_prev(datetime), tz)
        if due <= after:
            return None
        if due <= until:
            return due


def next_due_time(cron: str, timezone: str, after: datetime) -> datetime:
    """The first due time strictly after `after` (aware, UTC)."""
    far = after + timedelta(days=3700)  # cron expressions fire at least once in ten years
    for due in _iter_due_times(cron, timezone, after, far, 1):
        return due
    raise ValueError(f"cron {cron!r} has no due time after {after.isoformat()}")


def scheduled_parameters(template: dict[str, Any], due: datetime) -> dict[str, Any]:
    """The template's default parameters plus the absolute interval of its relative range as of
    the due time (e.g. relative_range='yesterday' at 06:00 local → the previous local day)."""
    parameters = dict(template["default_parameters"] or {})
    if template.get("relative_range"):
        from exports.reports.relative import resolve_relative_range

        start, end = resolve_relative_range(template["relative_range"], template["timezone"], now=due)
        parameters["interval_start"] = _iso(start)
        parameters["interval_end"] = _iso(end)
    parameters.setdefault("timezone", template["timezone"])
    return parameters


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def schedule_due_reports(settings: Settings | None = None, *, now: datetime) -> list[str]:
    """Create the report requests that are due at `now`; return the ids created by this call."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    settings = settings or get_settings()
    created: list[str] = []
    with db.connect("app", settings, dict_rows=True) as conn:
        candidate_ids = [row["id"] for row in conn.execute(
            "SELECT id FROM report_templates WHERE enabled AND schedule_enabled"
            " AND next_run_at IS NOT NULL AND next_run_at <= %s ORDER BY next_run_at", (now,))]
        conn.commit()
        for template_id in candidate_ids:
            created += _schedule_template(conn, template_id, now, settings)
    return created


def _schedule_template(conn, template_id: str, now: datetime, settings: Settings) -> list[str]:
    created: list[str] = []
    with conn.transaction():
        # SKIP LOCKED: another scheduler working on this template right now will advance it;
        # the unique (template_id, scheduled_for) would make our inserts no-ops anyway.
        template = conn.execute(
            "SELECT * FROM report_templates WHERE id = %s AND enabled AND schedule_enabled"
            " FOR UPDATE SKIP LOCKED", (template_id,)).fetchone()
        if template is None:
            return created
        after = template["last_scheduled_for"] or template["created_at"]
        cron, timezone = template["schedule_cron"], template["timezone"]
        if template["catch_up"] == "all":
            due_times = due_times_between(cron, timezone, after, now)
        else:
            latest = latest_due_time(cron, timezone, after, now)
            due_times = [latest] if latest else []
        deferred: list[datetime] = []
        if due_times:
            # The account's pending cap applies to scheduled reports too, counted under the same
            # lock as the API's creates; what does not fit stays owed and is retried.
            pending = store.lock_pending_count(conn, template["account_id"])
            room = max(0, settings.max_pending_per_account - pending)
            due_times, deferred = due_times[:room], due_times[room:]
        for due in due_times:
            request_id = store.insert_scheduled(conn, template, due, scheduled_parameters(template, due))
            if request_id:
                created.append(request_id)
        newest = max([after, *due_times]) if due_times else after
        last_scheduled = newest if due_times else template["last_scheduled_for"]
        if deferred:
            conn.execute(
                "UPDATE report_templates SET last_scheduled_for = %s, next_run_at = %s,"
                " deferred_reason = %s WHERE id = %s",
                (last_scheduled, now + timedelta(seconds=settings.schedule_deferral_retry_seconds),
                 f"deferred: account has {pending + len(created)} pending reports (limit "
                 f"{settings.max_pending_per_account}); the run due at {deferred[0].isoformat()} "
                 "is created when one finishes", template["id"]))
        else:
            conn.execute(
                "UPDATE report_templates SET last_scheduled_for = %s, next_run_at = %s,"
                " deferred_reason = NULL WHERE id = %s",
                (last_scheduled, next_due_time(cron, timezone, newest if due_times else max(after, now)),
                 template["id"]))
    return created


def shortest_interval(cron: str, *, samples: int = 1000) -> timedelta | None:
    """The shortest gap between consecutive due times of `cron` over its next `samples` due
    times (a year or more for any schedule that is frequent enough to matter); None when the
    expression cannot be walked (its own validation reports that)."""
    try:
        walker = croniter(cron, datetime(2026, 1, 1))
        previous = walker.get_next(datetime)
        shortest: timedelta | None = None
        for _ in range(samples):
            current = walker.get_next(datetime)
            gap = current - previous
            shortest = gap if shortest is None else min(shortest, gap)
            if current - datetime(2026, 1, 1) > timedelta(days=800):
                break
            previous = current
        return shortest
    except Exception:  # noqa: BLE001 — never-firing or invalid: validate_cron's job
        return None
