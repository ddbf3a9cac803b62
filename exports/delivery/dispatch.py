"""Who gets told what about a finished report, and the record of every attempt.

`notify_report_finished` creates one `deliveries` row per (channel, target, event) — email per
recipient, the webhook URL, and the account's in-app feed — with INSERT ... ON CONFLICT DO
NOTHING, so a retried report run or a second call adds nothing. It then attempts each pending
delivery. An attempt first *claims* its row (attempt_count + 1, next_attempt_at pushed out by a
lease) with a conditional UPDATE, so two dispatchers never send the same delivery at once; a
failed attempt schedules the next one with exponential backoff until settings.webhook_max_attempts,
then the delivery is `failed`. `retry_due_deliveries(now=...)` is the retry loop's tick.

Guarantee: a delivery is sent at most once per successful attempt record; a crash between the
SMTP/HTTP call and recording it can repeat that one delivery after the lease (at-least-once), which
is why webhook events carry a stable id.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from exports import db
from exports.delivery import email as email_channel
from exports.delivery import notifications
from exports.delivery import webhooks
from exports.errors import InvalidParameter, NotFound
from exports.report_object import report_object, unix
from exports.reports.catalog import get_report_type
from exports.settings import Settings, get_settings

log = logging.getLogger(__name__)

EVENT_FOR_STATUS = {"completed": "report.succeeded", "failed": "report.failed"}
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# While an attempt runs, its row is not due; if the process dies, the attempt is retried after this.
ATTEMPT_LEASE = timedelta(minutes=5)


def backoff_delay(attempt: int) -> timedelta:
    """Delay after failed attempt number `attempt` (1-based): 30 s, 60 s, 120 s, … capped at 1 h."""
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS))


def _conn(settings: Settings):
    return db.connect("app", settings, autocommit=True, dict_rows=True)


def _load_report(conn, request_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT r.*, t.name AS template_name, t.email_recipients AS template_recipients,"
        " t.webhook_url AS template_webhook_url"
        " FROM report_requests r LEFT JOIN report_templates t ON t.id = r.template_id"
        " WHERE r.id = %s", (request_id,)).fetchone()


def report_name(report: dict[str, Any]) -> str:
    """What people call the report: its schedule's name, else the catalog's title of its type
    ("Balance summary", not "balance.summary")."""
    if report.get("template_name"):
        return report["template_name"]
    try:
        return get_report_type(report["report_type"]).title
    except InvalidParameter:  # a type no longer in the catalog: its id is all there is
        return report["report_type"]


def notify_report_finished(request_id: str, settings: Settings | None = None, *,
                           now: datetime | None = None) -> list[int]:
    """Record the deliveries owed for a completed or failed request and attempt them now.
    Returns the ids of the deliveries attempted by this call."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    with _conn(settings) as conn:
        report = _load_report(conn, request_id)
        if report is None or report["status"] not in EVENT_FOR_STATUS:
            return []
        event = EVENT_FOR_STATUS[report["status"]]
        recipients = report["email_recipients"] or report["template_recipients"] or []
        webhook_url = report["webhook_url"] or report["template_webhook_url"]
        targets = [("email", address) for address in recipients]
        if webhook_url:
            targets.append(("webhook", webhook_url))
        targets.append(("in_app", report["account_id"]))
        for channel, target in targets:
            conn.execute(
                "INSERT INTO deliveries (request_id, account_id, channel, target, event, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (request_id, channel, target, event) DO NOTHING",
                (request_id, report["account_id"], channel, target, event, now))
        due = [row["id"] for row in conn.execute(
            "SELECT id FROM deliveries WHERE request_id = %s AND status = 'pending'"
            " AND next_attempt_at <= %s ORDER BY id", (request_id, now))]
    return [delivery_id for delivery_id in due if attempt_delivery(delivery_id, settings, now=now)]


def retry_due_deliveries(settings: Settings | None = None, *, now: datetime,
                         limit: int = 100) -> list[int]:
    """Attempt every pending delivery whose next attempt is due at `now`; return those attempted."""
    settings = settings or get_settings()
    with _conn(settings) as conn:
        due = [row["id"] for row in conn.execute(
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, id LIMIT %s", (now, limit))]
    return [delivery_id for delivery_id in due if attempt_delivery(delivery_id, settings, now=now)]


def attempt_delivery(delivery_id: int, settings: Settings, *, now: datetime) -> bool:
    """One attempt at one delivery; False when another worker holds it or it is not due."""
    with _conn(settings) as conn:
        delivery = conn.execute(
            "UPDATE deliveries SET attempt_count = attempt_count + 1, next_attempt_at = %s"
            " WHERE id = %s AND status = 'pending' AND next_attempt_at <= %s RETURNING *",
            (now + ATTEMPT_LEASE, delivery_id, now)).fetchone()
        if delivery is None:
            return False
        report = _load_report(conn, delivery["request_id"])
        ok, permanent, error, response_code = _send(conn, delivery, report, settings)
        attempt = delivery["attempt_count"]
        with conn.transaction():
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


def _send(conn, delivery: dict, report: dict | None, settings: Settings
          ) -> tuple[bool, bool, str | None, int | None]:
    """(ok, permanent_failure, error, response_code) of one channel action."""
    if report is None:
        return False, True, "the report no longer exists", None
    channel, event = delivery["channel"], delivery["event"]
    try:
        if channel == "in_app":
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
    with _conn(settings or get_settings()) as conn:
        if conn.execute("SELECT 1 FROM report_requests WHERE id = %s AND account_id = %s",
                        (request_id, account_id)).fetchone() is None:
            raise NotFound(f"No such report: '{request_id}'", param="id")
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


__all__ = ["notify_report_finished", "retry_due_deliveries", "attempt_delivery", "list_deliveries",
           "backoff_delay"]
