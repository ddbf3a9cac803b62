"""Delivery of finished reports through real services: email via an aiosmtpd server, signed
webhooks to a real HTTP receiver (with retries on an advancing clock), in-app notifications, and
the delivery records. Report files are real small files stored via exports.storage, completed
through the request store exactly as processing does."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exports import db
from exports.delivery import notify_report_finished, retry_due_deliveries
from exports.delivery.dispatch import list_deliveries
from exports.delivery.notifications import list_notifications
from exports.delivery.webhooks import SIGNATURE_HEADER, verify_signature, webhook_secret
from exports.requests import store
from exports.scheduling import schedule_due_reports
from exports.scheduling.templates import create_template
from exports.settings import get_settings
from exports.storage import get_storage, report_key

pytestmark = pytest.mark.integration

CSV = ("balance_transaction_id,created_utc,currency,gross\n"
       "txn_1,2026-05-01 10:00:00,usd,12.34\n"
       "txn_2,2026-05-01 11:00:00,eur,5.00\n"
       "txn_3,2026-05-01 12:00:00,usd,-2.00\n").encode()
MANIFEST_TOTALS = {"gross": {"usd": 1034, "eur": 500}}


@pytest.fixture
def delivery_settings(postgres, smtp_server, webhook_receiver):
    """Settings seen after the SMTP fixture pointed smtp_* at the test server."""
    smtp_server.clear()
    webhook_receiver.clear()
    return get_settings()


def new_account() -> str:
    return "acct_dlv" + secrets.token_hex(4)


def completed_request(settings, tmp_path: Path, account: str, *, recipients=None, webhook_url=None,
                      content: bytes = CSV, template_id: str | None = None) -> dict:
    """A request completed with a real stored file, the way processing completes one."""
    row, _ = store.create(store.NewRequest(
        account_id=account, report_type="balance_change_from_activity.itemized", format="csv",
        parameters={"interval_start": "2026-05-01T00:00:00+00:00",
                    "interval_end": "2026-05-02T00:00:00+00:00"},
        email_recipients=recipients, webhook_url=webhook_url), settings)
    if template_id:
        with db.connect("app", settings) as conn:
            conn.execute("UPDATE report_requests SET template_id = %s WHERE id = %s", (template_id, row["id"]))
    return complete_with_file(settings, tmp_path, row, content)


def complete_with_file(settings, tmp_path: Path, row: dict, content: bytes = CSV) -> dict:
    assert store.claim_for_processing(row["id"], settings=settings) is not None
    local = tmp_path / f"{row['id']}.csv"
    local.write_bytes(content)
    key = report_key(row["account_id"], row["created_at"], row["id"], "csv", settings)
    get_storage(settings).put(local, key, "text/csv")
    sha = hashlib.sha256(content).hexdigest()
    manifest = {"report_type": row["report_type"], "format": "csv", "file_name": f"{row['id']}.csv",
                "row_count": 3, "byte_size": len(content), "sha256": sha,
                "totals_minor": MANIFEST_TOTALS, "columns": ["balance_transaction_id"]}
    completed = store.complete(row["id"], file_key=key, file_size_bytes=len(content), row_count=3,
                               sha256=sha, manifest=manifest, data_version=None,
                               expires_at=datetime.now(UTC) + timedelta(days=7), settings=settings)
    assert completed is not None
    return completed


def attachments(message) -> list:
    return list(message.iter_attachments())


def test_email_with_attachment_webhook_and_in_app_exactly_once(delivery_settings, smtp_server,
                                                                webhook_receiver, tmp_path):
    settings = delivery_settings
    account = new_account()
    report = completed_request(settings, tmp_path, account, recipients=["finance@example.com"],
                               webhook_url=webhook_receiver.url("/once"))
    notify_report_finished(report["id"], settings)
    notify_report_finished(report["id"], settings)  # a retried run calls again: nothing more is sent

    [message] = smtp_server.messages_to("finance@example.com")
    assert message["Subject"] == "Your report is ready: Balance change from activity (itemized)"
    [attached] = attachments(message)
    data = attached.get_content()
    data = data.encode() if isinstance(data, str) else data
    assert hashlib.sha256(data).hexdigest() == report["sha256"]
    text = message.get_body(("plain",)).get_content()
    assert "Rows:        3" in text and "10.34" in text and "5.00" in text and "EUR" in text
    assert "<table" in message.get_body(("html",)).get_content()

    [hook] = webhook_receiver.received("/once")
    verify_signature(hook.body, hook.headers[SIGNATURE_HEADER.lower()], webhook_secret(account, settings))
    event = json.loads(hook.body)
    assert event["type"] == "report.succeeded"
    assert event["data"]["object"]["id"] == report["id"]
    assert event["data"]["object"]["sha256"] == report["sha256"]
    with pytest.raises(Exception):
        verify_signature(hook.body, hook.headers[SIGNATURE_HEADER.lower()], "whsec_wrong")

    [note] = list_notifications(account, settings=settings)
    assert note["request_id"] == report["id"] and note["event"] == "report.succeeded"
    deliveries = list_deliveries(report["id"], account, settings)
    assert sorted((d["channel"], d["status"], d["attempt_count"]) for d in deliveries) == [
        ("email", "sent", 1), ("in_app", "sent", 1), ("webhook", "sent", 1)]
    assert all(len(d["attempts"]) == 1 for d in deliveries)


def test_big_report_sends_a_link_instead_of_an_attachment(delivery_settings, smtp_server, tmp_path):
    settings = delivery_settings.model_copy(update={"email_attachment_max_bytes": 64})
    report = completed_request(settings, tmp_path, new_account(), recipients=["big@example.com"])
    notify_report_finished(report["id"], settings)
    [message] = smtp_server.messages_to("big@example.com")
    assert attachments(message) == []
    text = message.get_body(("plain",)).get_content()
    link = next(line.strip() for line in text.splitlines() if line.strip().startswith("http"))
    assert "/files/" in link and "sig=" in link and "expires=" in link
    assert "the link expires" in text and "too large to attach" in text


def test_failed_report_sends_a_failure_notice(delivery_settings, smtp_server, webhook_receiver):
    settings = delivery_settings
    account = new_account()
    row, _ = store.create(store.NewRequest(
        account_id=account, report_type="balance_change_from_activity.itemized", format="csv", parameters={},
        email_recipients=["ops@example.com"], webhook_url=webhook_receiver.url("/failed")), settings)
    store.fail(row["id"], "The warehouse was unreachable for 15 minutes.", settings)
    notify_report_finished(row["id"], settings)
    [message] = smtp_server.messages_to("ops@example.com")
    assert message["Subject"].startswith("Report failed")
    assert "The warehouse was unreachable" in message.get_body(("plain",)).get_content()
    assert attachments(message) == []
    [hook] = webhook_receiver.received("/failed")
    assert json.loads(hook.body)["type"] == "report.failed"


def test_webhook_failing_twice_is_delivered_on_the_third_attempt_once(delivery_settings, webhook_receiver,
                                                                      tmp_path):
    settings = delivery_settings
    account = new_account()
    webhook_receiver.fail_next(2, status=503, path="/flaky")
    report = completed_request(settings, tmp_path, account, webhook_url=webhook_receiver.url("/flaky"))
    start = datetime.now(UTC)
    notify_report_finished(report["id"], settings, now=start)
    assert [r.answered for r in webhook_receiver.received("/flaky")] == [503]

    # Backoff: not due yet (other tests' deliveries in the shared database may be, so only this
    # report's are looked at).
    own = {d["id"] for d in list_deliveries(report["id"], account, settings)}
    assert not own & set(retry_due_deliveries(settings, now=start + timedelta(seconds=10)))
    retry_due_deliveries(settings, now=start + timedelta(seconds=31))
    assert [r.answered for r in webhook_receiver.received("/flaky")] == [503, 503]
    retry_due_deliveries(settings, now=start + timedelta(seconds=31 + 59))  # 60 s backoff: not yet
    assert len(webhook_receiver.received("/flaky")) == 2
    retry_due_deliveries(settings, now=start + timedelta(seconds=31 + 61))
    for minutes in (5, 60, 600):  # later ticks send nothing more
        retry_due_deliveries(settings, now=start + timedelta(minutes=minutes))

    received = webhook_receiver.received("/flaky")
    assert [r.answered for r in received] == [503, 503, 200]
    assert len({json.loads(r.body)["id"] for r in received}) == 1  # same event id on every attempt
    secret = webhook_secret(account, settings)
    for request in received:
        verify_signature(request.body, request.headers[SIGNATURE_HEADER.lower()], secret)
    [webhook] = [d for d in list_deliveries(report["id"], account, settings) if d["channel"] == "webhook"]
    assert (webhook["status"], webhook["attempt_count"]) == ("sent", 3)
    assert [(a["status"], a["response_code"]) for a in webhook["attempts"]] == [
        ("failed", 503), ("failed", 503), ("sent", 200)]


def test_webhook_gives_up_after_max_attempts(delivery_settings, webhook_receiver, tmp_path):
    settings = delivery_settings.model_copy(update={"webhook_max_attempts": 3})
    account = new_account()
    webhook_receiver.fail_next(10, status=500, path="/down")
    report = completed_request(settings, tmp_path, account, webhook_url=webhook_receiver.url("/down"))
    start = datetime.now(UTC)
    notify_report_finished(report["id"], settings, now=start)
    for hours in (1, 2, 3, 4):
        retry_due_deliveries(settings, now=start + timedelta(hours=hours))
    assert len(webhook_receiver.received("/down")) == 3
    [webhook] = [d for d in list_deliveries(report["id"], account, settings) if d["channel"] == "webhook"]
    assert webhook["status"] == "failed" and "HTTP 500" in webhook["last_error"]


def test_scheduled_template_delivers_to_its_recipients(delivery_settings, smtp_server, webhook_receiver,
                                                       tmp_path):
    """template -> scheduler -> (completed like processing does) -> email + webhook."""
    settings = delivery_settings
    account = new_account()
    tpl = create_template(account, {
        "name": "Nightly balance", "report_type": "balance_change_from_activity.itemized", "format": "csv",
        "schedule_cron": "0 6 * * *", "timezone": "UTC", "relative_range": "yesterday",
        "email_recipients": ["cfo@example.com"], "webhook_url": webhook_receiver.url("/sched")},
        settings=settings, now=datetime(2026, 9, 1, tzinfo=UTC))
    created = schedule_due_reports(settings, now=datetime(2026, 9, 1, 6, tzinfo=UTC))
    with db.connect("app", settings) as conn:
        [(request_id,)] = conn.execute("SELECT id FROM report_requests WHERE template_id = %s",
                                       (tpl["id"],)).fetchall()
    assert request_id in created
    report = complete_with_file(settings, tmp_path, store.get(request_id, account, settings))
    notify_report_finished(report["id"], settings)
    [message] = smtp_server.messages_to("cfo@example.com")
    assert "Nightly balance" in message["Subject"]
    [hook] = webhook_receiver.received("/sched")
    event = json.loads(hook.body)
    assert event["data"]["object"]["template"] == tpl["id"]
    assert event["data"]["object"]["scheduled_for"] == int(datetime(2026, 9, 1, 6, tzinfo=UTC).timestamp())


def test_end_to_end_template_scheduler_processing_email_and_webhook(demo_platform, smtp_server,
                                                                     webhook_receiver):
    """template -> scheduler -> process_request (real warehouse + writer) -> email + webhook."""
    from exports.requests.processing import process_request

    smtp_server.clear()
    settings = get_settings()
    with db.connect("source", settings) as conn:
        account, tz = conn.execute("SELECT id, timezone FROM accounts ORDER BY id LIMIT 1").fetchone()
    tpl = create_template(account, {
        "name": "E2E daily activity", "report_type": "balance_change_from_activity.itemized",
        "format": "csv", "schedule_cron": "0 6 * * *", "timezone": tz, "relative_range": "yesterday",
        "catch_up": "latest", "email_recipients": ["e2e@example.com"],
        "webhook_url": webhook_receiver.url("/e2e")}, settings=settings, now=datetime(2026, 10, 20, tzinfo=UTC))
    schedule_due_reports(settings, now=datetime(2026, 10, 22, 12, tzinfo=UTC))
    with db.connect("app", settings) as conn:
        [(request_id,)] = conn.execute("SELECT id FROM report_requests WHERE template_id = %s",
                                       (tpl["id"],)).fetchall()

    assert process_request(request_id, settings) == "completed"
    report = store.get(request_id, account, settings)
    assert report["row_count"] > 0

    [message] = smtp_server.messages_to("e2e@example.com")
    [attached] = attachments(message)
    data = attached.get_content()
    data = data.encode() if isinstance(data, str) else data
    assert hashlib.sha256(data).hexdigest() == report["sha256"]
    [hook] = webhook_receiver.received("/e2e")
    verify_signature(hook.body, hook.headers[SIGNATURE_HEADER.lower()], webhook_secret(account, settings))
    event = json.loads(hook.body)
    assert (event["type"], event["data"]["object"]["id"]) == ("report.succeeded", request_id)
    assert event["data"]["object"]["row_count"] == report["row_count"]


def _plain_message(n: int):
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "reports@example.com", "fin@example.com", f"m{n}"
    message.set_content(f"message {n}")
    return message


def test_a_run_sends_its_emails_over_one_kept_connection_per_thread(delivery_settings, smtp_server,
                                                                    monkeypatch):
    """Within smtp_sessions (statement runs, batch deliveries) a thread reuses its connection,
    up to MESSAGES_PER_CONNECTION messages; without it, a connection per message."""
    from exports.delivery import email as email_channel

    smtp_server.clear()
    for n in range(3):
        email_channel.send_message(_plain_message(n), delivery_settings)
    assert len(smtp_server.messages) == 3 and smtp_server.connections == 3

    smtp_server.clear()
    monkeypatch.setattr(email_channel, "MESSAGES_PER_CONNECTION", 2)
    with email_channel.smtp_sessions(delivery_settings):
        for n in range(5):
            email_channel.send_message(_plain_message(n), delivery_settings)
    assert [m["Subject"] for m in smtp_server.messages] == [f"m{n}" for n in range(5)]
    assert smtp_server.connections == 3  # 2 + 2 + 1


def test_a_kept_connection_the_server_dropped_sends_the_message_once_on_a_new_one(
        delivery_settings, smtp_server):
    import socket

    from exports.delivery import email as email_channel

    smtp_server.clear()
    with email_channel.smtp_sessions(delivery_settings) as sessions:
        email_channel.send_message(_plain_message(0), delivery_settings)
        kept, _ = sessions.take()
        kept.sock.shutdown(socket.SHUT_RDWR)  # as when the server closes an idle connection
        email_channel.send_message(_plain_message(1), delivery_settings)
        assert sessions._open and kept not in sessions._open
    assert [m["Subject"] for m in smtp_server.messages] == ["m0", "m1"]
    assert smtp_server.connections == 2 and not sessions._open
