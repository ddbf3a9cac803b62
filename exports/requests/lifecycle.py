"""The report lifecycle: a request's states, the moves between them, and the retry policy.

This module is the one home of these rules; the store (exports/requests/store.py) carries each
move out as one conditional UPDATE, and the Dagster code (orchestration/defs/reports/) derives its
settings from here: report runs are never re-executed whole by Dagster (`RUN_RETRY_TAGS`: a batch
run holds many requests, each retried on its own below), and the run-failure sensor and the
watchdog hand the requests of a dead run to `rescue`.

    pending ──claim──▶ processing ──▶ completed ──retention──▶ expired
      ▲  │                 │  ├─────▶ failed    cannot be served, or out of attempts
      │  │                 │  └─────▶ canceled  API cancel: the worker stops at its next check
      │  └─▶ canceled      │
      └────────────────────┘  back to pending, with a visible status_reason, when:
                               - an attempt failed for a reason worth retrying and attempts are
                                 left (not claimed again before `not_before`: backoff);
                               - its worker died (rescued by the watchdog / run-failure sensor);
                               - a scheduled request's interval ends after the data available:
                                 "waiting for data up to …", claimed once the data is there
                                 (not an attempt; failed after WAIT_FOR_DATA_DEADLINE).
      failed ──operator retry (`payreports ops retry`)──▶ pending, with fresh attempts

Every attempt is one claim (attempt_count + 1). A claim records the claiming run
(dagster_run_id), and only that run may complete or fail the request: a presumed-dead worker that
comes back finds its request owned by someone else and leaves it alone (one file, one delivery).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from exports.errors import ReportingError
from exports.settings import Settings, get_settings

log = logging.getLogger(__name__)

PENDING, PROCESSING, COMPLETED, FAILED, CANCELED, EXPIRED = (
    "pending", "processing", "completed", "failed", "canceled", "expired")
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED, CANCELED, EXPIRED)
# Allowed moves (the store's UPDATEs each implement one; tests/unit/test_lifecycle.py checks the
# store names no other).
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({PROCESSING, CANCELED, FAILED}),
    PROCESSING: frozenset({COMPLETED, FAILED, CANCELED, PENDING}),
    COMPLETED: frozenset({EXPIRED}),
    FAILED: frozenset({PENDING}),
    CANCELED: frozenset(),
    EXPIRED: frozenset(),
}

# A worker touches its row this often, even while a long query produces no rows yet.
HEARTBEAT_SECONDS = 5.0
# A processing row silent for longer is suspected orphaned; the watchdog acts only when a later
# look, CONFIRM_SECONDS on, finds it still silent (so a database outage that paused every
# heartbeat is not mistaken for dead workers: after it the heartbeats resume within seconds).
STALE_AFTER_SECONDS = 30.0
CONFIRM_SECONDS = 3 * HEARTBEAT_SECONDS
# Scheduled requests wait for late data this long past their interval's end (or their creation,
# when a catch-up created them later), then fail.
WAIT_FOR_DATA_DEADLINE = timedelta(hours=24)
# Sources whose requests wait for their data instead of failing (API requests are validated
# against the data available when they are made; data only grows after that).
WAITS_FOR_DATA_SOURCES = frozenset({"schedule"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_first_seconds: float = 5.0
    backoff_factor: float = 4.0
    backoff_max_seconds: float = 300.0

    def attempts_left(self, attempt_count: int) -> bool:
        return attempt_count < self.max_attempts

    def backoff(self, attempt_count: int) -> timedelta:
        """Delay before attempt `attempt_count + 1` (5 s, 20 s, 80 s, … capped)."""
        seconds = self.backoff_first_seconds * self.backoff_factor ** max(0, attempt_count - 1)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))


RETRY_POLICY = RetryPolicy()
# A Dagster report run is never re-executed whole: its requests are retried one by one above.
RUN_RETRY_TAGS = {"dagster/max_retries": "0"}


class ReportCanceled(Exception):
    """Raised from the progress callback to stop rendering a canceled request."""


class StorageUnavailable(Exception):
    """The finished file could not be stored. Worth retrying (an operator can fix storage)."""


@dataclass(frozen=True)
class Failure:
    message: str  # what the user sees (error_message): the actionable cause when there is one
    retryable: bool


def internal_error_message(run_id: str | None) -> str:
    return ("internal error while generating the report; it will not be retried automatically "
            f"(ref {run_id or 'no-run'})")


def storage_error(exc: BaseException) -> StorageUnavailable:
    """Word a storage write failure by its cause (the path stays in the logs, not the message)."""
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = "the report storage is not writable (permission denied)"
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "the report storage is full"
    else:
        cause = f"the report storage rejected the file ({type(exc).__name__})"
    return StorageUnavailable(cause)


def classify(exc: BaseException, run_id: str | None) -> Failure:
    """How an attempt's error ends it: the user's message and whether to try again."""
    if isinstance(exc, ReportingError):  # the request itself cannot be served: retrying won't help
        return Failure(exc.message, retryable=False)
    if isinstance(exc, StorageUnavailable):
        return Failure(f"the report was generated but could not be saved: {exc}; an operator "
                       f"must fix the storage, then retry the report (ref {run_id or 'no-run'})",
                       retryable=True)
    from exports.warehouse import WarehouseBusy

    if isinstance(exc, WarehouseBusy):
        return Failure("the reporting warehouse stayed busy for too long; try again later "
                       f"(ref {run_id or 'no-run'})", retryable=True)
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        return Failure("a database the reports read was unreachable; try again later "
                       f"(ref {run_id or 'no-run'})", retryable=True)
    return Failure(internal_error_message(run_id), retryable=True)


# Set by `deliveries_in_background` (a batch run): finished requests are handed to its threads.
_background_deliveries: ContextVar = ContextVar("payreports_background_deliveries", default=None)


@contextmanager
def deliveries_in_background(settings: Settings) -> Iterator[None]:
    """Within the block, `notify_finished` queues a finished request's deliveries on threads of
    this process instead of sending them inline (a slow endpoint must not hold the next request).
    Leaving the block waits briefly for them (and for attempts in flight); what is left stays
    recorded or marked due in the store and the delivery sensor sends it."""
    from exports.delivery import BackgroundDeliveries

    with BackgroundDeliveries(settings) as sender:
        token = _background_deliveries.set(sender)
        try:
            yield
        finally:
            _background_deliveries.reset(token)


def notify_finished(request_id: str, settings: Settings) -> None:
    """Hand a finished request to delivery. Deliveries must never make a request fail: log and
    carry on (the request stays marked deliveries_due, and the delivery sensor retries)."""
    from exports.delivery import notify_report_finished

    sender = _background_deliveries.get()
    if sender is not None:
        sender.submit(request_id)
        return
    try:
        notify_report_finished(request_id, settings=settings)
    except Exception:  # noqa: BLE001 — delivery has its own retries; the report is done
        log.exception("notifying about %s failed; deliveries will retry", request_id)


def _fail(row: dict, message: str, settings: Settings, claimed_by: str | None) -> str:
    from exports.requests import store

    if store.fail(row["id"], message, settings, claimed_by=claimed_by) is None:
        return store.status_of(row["id"], settings) or "missing"
    notify_finished(row["id"], settings)
    return FAILED


def attempt_failed(row: dict, exc: BaseException, settings: Settings, *, run_id: str | None,
                   now: datetime | None = None, max_attempts: int | None = None) -> str:
    """An attempt on a claimed row raised: retry later (backoff) or fail for good; the status.
    `max_attempts` may lower the policy's for a caller that retries in its own way (statements:
    a failed file is retried by re-running its partition)."""
    from exports.requests import store

    failure = classify(exc, run_id)
    limit = min(RETRY_POLICY.max_attempts, max_attempts or RETRY_POLICY.max_attempts)
    if failure.retryable and row["attempt_count"] < limit:
        now = now or datetime.now(timezone.utc)
        reason = (f"retrying after attempt {row['attempt_count']} of {RETRY_POLICY.max_attempts} "
                  f"failed: {failure.message}")
        if store.retry_later(row["id"], not_before=now + RETRY_POLICY.backoff(row["attempt_count"]),
                             reason=reason, settings=settings, claimed_by=run_id) is not None:
            log.warning("report %s: %s", row["id"], reason, exc_info=exc)
            return PENDING
        return store.status_of(row["id"], settings) or "missing"
    log.error("report %s failed for good: %s", row["id"], failure.message, exc_info=exc)
    return _fail(row, failure.message, settings, run_id)


def rescue(row: dict, why: str, settings: Settings | None = None, *,
           now: datetime | None = None) -> str:
    """A processing row whose worker is gone (`why` says how we know): back to pending while
    attempts are left, else failed naming the run. Returns the status."""
    from exports.requests import store

    settings = settings or get_settings()
    run_id = row.get("dagster_run_id")
    if RETRY_POLICY.attempts_left(row["attempt_count"]):
        now = now or datetime.now(timezone.utc)
        reason = f"retrying: {why} (attempt {row['attempt_count']} of {RETRY_POLICY.max_attempts})"
        if store.retry_later(row["id"], not_before=now + RETRY_POLICY.backoff(row["attempt_count"]),
                             reason=reason, settings=settings, claimed_by=run_id) is not None:
            return PENDING
        return store.status_of(row["id"], settings) or "missing"
    message = (f"internal error: {why}, {row['attempt_count']} times; it will not be retried "
               f"automatically (ref {run_id or 'no-run'})")
    return _fail(row, message, settings, run_id)


def waiting_reason(until: datetime, available: datetime | None) -> str:
    have = f"available up to {available.isoformat()}" if available else "not replicated yet"
    return f"waiting for data up to {until.isoformat()} (data {have})"


def needs_to_wait(row: dict, interval_end: datetime | None, available: datetime | None) -> bool:
    return (row["source"] in WAITS_FOR_DATA_SOURCES and interval_end is not None
            and (available is None or interval_end > available))


def wait_for_data(row: dict, until: datetime, available: datetime | None, settings: Settings, *,
                  run_id: str | None, now: datetime | None = None) -> str:
    """A claimed scheduled request whose data is not there yet: back to pending, claimable once
    replication has passed `until` (the claim was not an attempt); failed past the deadline."""
    from exports.requests import store

    now = now or datetime.now(timezone.utc)
    if now > max(until, row["created_at"]) + WAIT_FOR_DATA_DEADLINE:
        return _fail(row, f"the data this report covers (up to {until.isoformat()}) was still not "
                          f"available {WAIT_FOR_DATA_DEADLINE} after the period ended "
                          f"({waiting_reason(until, available)[len('waiting for '):]})",
                     settings, run_id)
    if store.wait_for_data(row["id"], until=until, reason=waiting_reason(until, available),
                           settings=settings, claimed_by=run_id) is None:
        return store.status_of(row["id"], settings) or "missing"
    return PENDING


def fail_overdue_waits(settings: Settings | None = None, now: datetime | None = None) -> list[str]:
    """Fail pending requests still waiting for data WAIT_FOR_DATA_DEADLINE after their period."""
    from exports.requests import store

    settings = settings or get_settings()
    now = now or datetime.now(timezone.utc)
    failed = []
    for row in store.list_waiting_for_data(until_before=now - WAIT_FOR_DATA_DEADLINE,
                                           settings=settings):
        message = (f"the data this report covers (up to {row['waiting_for_data_until'].isoformat()}) "
                   f"was still not available {WAIT_FOR_DATA_DEADLINE} after the period ended")
        if _fail(row, message, settings, None) == FAILED:
            failed.append(row["id"])
    return failed


def retry_failed(request_id: str, settings: Settings | None = None) -> dict:
    """Operator retry: failed -> pending with fresh attempts and the error cleared. Any other
    status is an error naming it."""
    from exports.errors import InvalidParameter
    from exports.requests import store

    row = store.reset_failed(request_id, settings)
    if row is None:
        current = store.get(request_id, settings=settings)  # NotFound when missing
        raise InvalidParameter(f"report {request_id} is {current['status']}; only failed reports "
                               "can be retried", param="REPORT_ID")
    return row
