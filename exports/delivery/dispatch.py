"""Who gets told what about a finished report, and the record of every attempt.

Delivery is its own step after a report is finished, never part of rendering it:

- The store's UPDATE that completes or fails a report also marks it `deliveries_due`.
- `record_deliveries` creates one `deliveries` row per (channel, target, event) — email per
  recipient, the webhook URL, and the account's in-app feed — with INSERT ... ON CONFLICT DO
  NOTHING, and clears the mark in the same transaction, so a retried report run or a second call
  adds nothing, and a worker that dies in between leaves the mark for `deliver_due` to find.
- An attempt first *claims* its row (attempt_count + 1, next_attempt_at pushed out by a lease)
  with a conditional UPDATE, so two dispatchers never send the same delivery at once, and holds no
  database connection while it talks to SMTP or the webhook endpoint; a failed attempt schedules
  the next one with exponential backoff until settings.webhook_max_attempts, then the delivery is
  `failed`.
- A batch run hands each finished report to `BackgroundDeliveries` (a few threads of its own
  process): a slow webhook endpoint or SMTP server never delays claiming or rendering the next
  request. `deliver_due(now=...)` — the delivery sensor's tick — records what dead workers left
  marked and attempts every delivery whose (next) attempt is due.

Guarantee: one delivery per report, channel, target and event, sent at most once per successful
attempt record; a crash between the SMTP/HTTP call and recording it can repeat that one delivery
after the lease (at-least-once), which is why webhook events carry a stable id.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import UTC, datetime, timedelta
from typing import Any

from exports import db
from exports.delivery import email as email_channel
from exports.delivery import notifications
from exports.delivery import webhooks
from exports.errors import InvalidParameter
from exports.report_object import report_object, unix
from exports.reports.catalog import get_report_type
from exports.requests import store
from exports.settings import Settings, get_settings

log = logging.getLogger(__name__)

EVENT_FOR_STATUS = {"completed": "report.succeeded", "failed": "report.failed"}
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# While an attempt runs, its row is not due; if the process dies, the attempt is retried after this.
ATTEMPT_LEASE = timedelta(minutes=5)
# A finished report still marked deliveries_due this long after it finished was left by a worker
# that died (or gave up its queue at the end of its batch): deliver_due records its deliveries.
# Younger ones are still in their run's BackgroundDeliveries queue.
RECORD_GRACE = timedelta(seconds=60)


def backoff_delay(attempt: int) -> timedelta:
    """Delay after failed attempt number `attempt` (1-based): 30 s, 60 s, 120 s, … capped at 1 h."""
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS))


def _conn(settings: Settings):
    return db.connect("app", settings, autocommit=True, dict_rows=True)


def report_name(report: dict[str, Any]) -> str:
    """What people call the report: its schedule's name, else the catalog's title of its type
    ("Balance summary", not "balance.summary")."""
    if report.get("template_name"):
        return report["template_name"]
    try:
        return get_report_type(report["report_type"]).title
    except InvalidParameter:  # a type no longer in the catalog: its id is all there is
        return report["report_type"]


def record_deliveries(request_id: str, settings: Settings | None = None, *,
                      now: datetime | None = None) -> list[int]:
    """Record the deliveries owed for a completed or failed request (idempotent) and clear its
    deliveries_due mark in the same transaction. Returns the ids of its deliveries due now."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    report = store.for_delivery(request_id, settings)
    if report is None:
        return []
    with _conn(settings) as conn, conn.transaction():
        if report["status"] in EVENT_FOR_STATUS:
            event = EVENT_FOR_STATUS[report["status"]]
            recipients = report["email_recipients"] or report["template_recipients"] or []
            webhook_url = report["webhook_url"] or report["template_webhook_url"]
            targets = [("email", address) for address in recipients]
            if webhook_url:
                targets.append(("webhook", webhook_url))
            targets.append(("in_app", report["account_id"]))
            for channel, target in targets:
                conn.execute(
                    "INSERT INTO deliveries (request_id, account_id, channel, target, event,"
                    " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (request_id, channel, target, event) DO NOTHING",
                    (request_id, report["account_id"], channel, target, event, now))
        store.deliveries_recorded(conn, request_id)
        return [row["id"] for row in conn.execute(
            "SELECT id FROM deliveries WHERE request_id = %s AND status = 'pending'"
            " AND next_attempt_at <= %s ORDER BY id", (request_id, now))]


def notify_report_finished(request_id: str, settings: Settings | None = None, *,
                           now: datetime | None = None) -> list[int]:
    """Record the deliveries owed for a completed or failed request and attempt them now.
    Returns the ids of the deliveries attempted by this call."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    due = record_deliveries(request_id, settings, now=now)
    return [delivery_id for delivery_id in due if attempt_delivery(delivery_id, settings, now=now)]


def retry_due_deliveries(settings: Settings | None = None, *, now: datetime, limit: int = 100,
                         budget_seconds: float | None = None) -> list[int]:
    """Attempt every pending delivery whose next attempt is due at `now` (at most `limit`; with
    `budget_seconds`, no attempt is started after that much wall time); return those attempted."""
    settings = settings or get_settings()
    with _conn(settings) as conn:
        due = [row["id"] for row in conn.execute(
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, id LIMIT %s", (now, limit))]
    stop_at = None if budget_seconds is None else time.monotonic() + budget_seconds
    attempted = []
    for delivery_id in due:
        if stop_at is not None and time.monotonic() >= stop_at:
            break  # the rest stay due for the next tick
        if attempt_delivery(delivery_id, settings, now=now):
            attempted.append(delivery_id)
    return attempted


def deliver_due(settings: Settings | None = None, *, now: datetime, limit: int = 100,
                budget_seconds: float | None = None) -> list[int]:
    """The delivery loop's tick: record the deliveries of reports finished more than RECORD_GRACE
    ago and still marked due (their worker died first), then attempt the deliveries due at `now`
    (see retry_due_deliveries for `limit` and `budget_seconds`). Returns the ids attempted."""
    settings = settings or get_settings()
    for request_id in store.list_deliveries_due(now - RECORD_GRACE, settings=settings):
        record_deliveries(request_id, settings, now=now)
    return retry_due_deliveries(settings, now=now, limit=limit, budget_seconds=budget_seconds)


def attempt_delivery(delivery_id: int, settings: Settings, *, now: datetime) -> bool:
    """One attempt at one delivery; False when another worker holds it or it is not due."""
    with _conn(settings) as conn:
        delivery = conn.execute(
            "UPDATE deliveries SET attempt_count = attempt_count + 1, next_attempt_at = %s"
            " WHERE id = %s AND status = 'pending' AND next_attempt_at <= %s RETURNING *",
            (now + ATTEMPT_LEASE, delivery_id, now)).fetchone()
    if delivery is None:
        return False
    # No connection is held while SMTP or the endpoint answers (up to the webhook timeout).
    report = store.for_delivery(delivery["request_id"], settings)
    ok, permanent, error, response_code = _send(delivery, report, settings)
    attempt = delivery["attempt_count"]
    with _conn(settings) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempt, status, error, response_code, at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (delivery_id, attempt, "sent" if ok else "failed", error, response_code, now))
        if ok:
            conn.execute("UPDATE deliveries SET status = 'sent', sent_at = %s, last_error = NULL,"
                         " next_attempt_at = NULL WHERE id = %s", (now, delivery_id))
        elif permanent or attempt >= settings.webhook_max_attempts:
            conn.execute("UPDATE deliveries SET status = 'failed', last_error = %s,"
                         " next_attempt_at = NULL WHERE id = %s", (error, delivery_id))
        else:
            conn.execute("UPDATE deliveries SET last_error = %s, next_attempt_at = %s WHERE id = %s",
                         (error, now + backoff_delay(attempt), delivery_id))
    if not ok:
        log.warning("delivery %s (%s to %s) attempt %s failed: %s", delivery_id, delivery["channel"],
                    delivery["target"], attempt, error)
    return True


class BackgroundDeliveries:
    """Delivers finished reports on `workers` threads of this process, so that a slow webhook
    endpoint or SMTP server (each attempt bounded by settings.webhook_timeout_seconds) never holds
    the caller. `submit` never blocks: past `max_queued` waiting reports it leaves the report
    marked due for `deliver_due`. `close` waits up to `close_grace_seconds` for the queue, then
    lets the attempts in flight finish (each bounded by the webhook timeout) and drops the rest —
    they stay recorded or marked due, and the delivery sensor sends them; nothing is lost and
    nothing sent twice. The grace is short: while a batch run waits here it still counts as a
    running report run, and in embedded mode no on-demand run starts beside it."""

    def __init__(self, settings: Settings, *, workers: int = 2, max_queued: int = 1000,
                 close_grace_seconds: float = 2.0):
        self.settings = settings
        self.close_grace_seconds = close_grace_seconds
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="deliveries")
        # Each delivery thread keeps its SMTP connection for the batch (email.SmtpSessions).
        self._smtp = email_channel.SmtpSessions(settings)
        self._slots = threading.BoundedSemaphore(max_queued)
        self._futures: set[Future] = set()
        self._lock = threading.Lock()

    def submit(self, request_id: str) -> bool:
        """Queue the report's deliveries; False when the queue is full (the sensor sends them)."""
        if not self._slots.acquire(blocking=False):
            log.warning("delivery queue full: %s is left to the delivery sensor", request_id)
            return False
        future = self._executor.submit(self._deliver, request_id)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)
        return True

    def _done(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)
        self._slots.release()

    def _deliver(self, request_id: str) -> None:
        try:
            with self._smtp.active():
                notify_report_finished(request_id, self.settings)
        except Exception:  # noqa: BLE001 — the report is done; the delivery sensor retries
            log.exception("delivering %s failed; the delivery sensor will retry", request_id)

    def close(self, grace: float | None = None) -> None:
        with self._lock:
            waiting = list(self._futures)
        wait_for(waiting, timeout=self.close_grace_seconds if grace is None else grace)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._smtp.close()

    def __enter__(self) -> "BackgroundDeliveries":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _send(delivery: dict, report: dict | None, settings: Settings
          ) -> tuple[bool, bool, str | None, int | None]:
    """(ok, permanent_failure, error, response_code) of one channel action."""
    if report is None:
        return False, True, "the report no longer exists", None
    channel, event = delivery["channel"], delivery["event"]
    try:
        if channel == "in_app":
            with _conn(settings) as conn:
                notifications.record(conn, account_id=report["account_id"], request_id=report["id"],
                                     event=event, **_notification_text(report, event))
            return True, False, None, None
        if channel == "email":
            message = email_channel.build_message(report, event, to=delivery["target"],
                                                  report_name=report_name(report), settings=settings)
            email_channel.send_message(message, settings)
            return True, False, None, 250
        if channel == "webhook":
            payload = webhooks.event_payload(
                webhooks.event_id_for(report["id"], event), event,
                int(delivery["created_at"].timestamp()),
                report_object(report, settings).model_dump(mode="json"))
            secrets = webhooks.signing_secrets(report["account_id"], settings)
            result = webhooks.post_event(delivery["target"], payload, secrets, settings)
            return result.ok, result.permanent, result.error, result.status_code
    except email_channel.PermanentDeliveryError as exc:
        return False, True, str(exc), None
    except Exception as exc:  # noqa: BLE001 — any trouble is recorded and retried
        return False, False, f"{type(exc).__name__}: {exc}", None
    return False, True, f"unknown channel {channel!r}", None


def _notification_text(report: dict, event: str) -> dict[str, str]:
    name = report_name(report)
    if event == "report.failed":
        return {"title": f"Report failed: {name}",
                "body": report.get("error_message") or "The report could not be generated."}
    return {"title": f"Report ready: {name}",
            "body": f"{report.get('row_count') or 0:,} rows, {report['format'].upper()}, "
                    f"{email_channel.report_period(report)}."}


def list_deliveries(request_id: str, account_id: str, settings: Settings | None = None) -> list[dict]:
    """The deliveries of one of the account's reports, each with its attempts (oldest first)."""
    settings = settings or get_settings()
    store.get(request_id, account_id, settings)  # NotFound for a missing or another account's report
    with _conn(settings) as conn:
        rows = conn.execute("SELECT * FROM deliveries WHERE request_id = %s ORDER BY id",
                            (request_id,)).fetchall()
        attempts = conn.execute(
            "SELECT a.* FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
            " WHERE d.request_id = %s ORDER BY a.delivery_id, a.attempt", (request_id,)).fetchall()
    by_delivery: dict[int, list[dict]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
    return [{**row, "attempts": by_delivery.get(row["id"], [])} for row in rows]


def list_account_deliveries(account_id: str, *, channel: str | None = None, limit: int = 50,
                            settings: Settings | None = None) -> list[dict]:
    """The account's newest deliveries (optionally of one channel), each with its attempts."""
    with _conn(settings or get_settings()) as conn:
        rows = conn.execute(
            "SELECT * FROM deliveries WHERE account_id = %s AND (%s::text IS NULL OR channel = %s)"
            " ORDER BY created_at DESC, id DESC LIMIT %s", (account_id, channel, channel, limit)).fetchall()
        attempts = conn.execute(
            "SELECT * FROM delivery_attempts WHERE delivery_id = ANY(%s) ORDER BY delivery_id, attempt",
            ([r["id"] for r in rows],)).fetchall()
    by_delivery: dict[int, list[dict]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
    return [{**row, "attempts": by_delivery.get(row["id"], [])} for row in rows]


def delivery_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"dlv_{row['id']}", "object": "delivery", "report": row["request_id"],
        "channel": row["channel"], "target": row["target"], "event": row["event"],
        "status": row["status"], "attempt_count": row["attempt_count"],
        "next_attempt_at": unix(row["next_attempt_at"]), "last_error": row["last_error"],
        "sent_at": unix(row["sent_at"]),
        "attempts": [{"attempt": a["attempt"], "status": a["status"], "error": a["error"],
                      "response_code": a["response_code"], "at": unix(a["at"])}
                     for a in row.get("attempts", [])],
    }


__all__ = ["notify_report_finished", "record_deliveries", "retry_due_deliveries", "deliver_due",
           "attempt_delivery", "BackgroundDeliveries", "list_deliveries", "backoff_delay"]
