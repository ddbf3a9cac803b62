"""Delivery is its own step after a batch completes a report: a slow webhook endpoint does not
hold the next request of the batch, and a worker that dies between completing a report and
sending its deliveries (or in the middle of an attempt) still gets each delivered exactly once.

Runs batches in process against the demo platform, the session's SMTP server and webhook
receiver. Every request here gets a priority no other test uses and the batches claim only it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from exports.delivery import deliver_due, dispatch
from exports.delivery.dispatch import ATTEMPT_LEASE, RECORD_GRACE, list_deliveries
from exports.requests import processing, store
from exports.requests.processing import Lane
from exports.settings import get_settings

pytestmark = pytest.mark.integration

PRIORITY = 5100
LANE = Lane("bulk", PRIORITY, max_requests=20, max_seconds=120, run_priority=0)
PARAMS = {"interval_start": 1790812800, "interval_end": 1793491200}  # 2026-10-01 .. 2026-11-01
SLOW_SECONDS = 6.0  # under the 10 s webhook timeout: the attempt succeeds, just slowly


@pytest.fixture
def delivering(demo_platform, smtp_server, webhook_receiver):
    """Settings seen after the SMTP fixture pointed smtp_* at the test server."""
    return get_settings()


def _account(settings) -> str:
    from exports import db

    with db.connect("source", settings) as conn:
        return conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]


def _request(settings, account, **delivery) -> str:
    row, _ = store.create(store.NewRequest(account_id=account, report_type="balance.summary.1",
                                           parameters=PARAMS, format="csv", priority=PRIORITY,
                                           **delivery), settings)
    return row["id"]


def _deliveries(request_id, account, settings) -> dict[str, tuple[str, int]]:
    return {row["channel"]: (row["status"], len([a for a in row["attempts"] if a["status"] == "sent"]))
            for row in list_deliveries(request_id, account, settings)}


def test_slow_webhook_does_not_delay_the_next_request_of_the_batch(delivering, webhook_receiver):
    settings = delivering
    account = _account(settings)
    path = f"/slow-{secrets.token_hex(4)}"
    webhook_receiver.slow(path, SLOW_SECONDS)
    slow = _request(settings, account, webhook_url=webhook_receiver.url(path))
    after = _request(settings, account)

    summary = processing.run_batch("run-slow-webhook", LANE, settings)

    assert [status for _, status in summary.processed] == ["completed", "completed"]
    first, second = (store.get(i, settings=settings) for i in (slow, after))
    # Inline delivery made the second wait for the slow endpoint: >= SLOW_SECONDS.
    gap = (second["completed_at"] - first["completed_at"]).total_seconds()
    assert gap < SLOW_SECONDS / 2, gap
    # The batch waited (bounded) for its deliveries: the slow one was sent, once.
    assert len(webhook_receiver.received(path)) == 1
    assert _deliveries(slow, account, settings) == {"webhook": ("sent", 1), "in_app": ("sent", 1)}
    assert not store.get(slow, settings=settings)["deliveries_due"]


def test_worker_dying_after_completing_still_delivers_exactly_once(delivering, smtp_server,
                                                                   webhook_receiver, monkeypatch):
    settings = delivering
    account = _account(settings)
    path = f"/after-death-{secrets.token_hex(4)}"
    address = f"death-{secrets.token_hex(4)}@example.com"
    request_id = _request(settings, account, webhook_url=webhook_receiver.url(path),
                          email_recipients=[address])
    # The process dies right after the report is completed: nothing reaches delivery.
    with monkeypatch.context() as patched:
        patched.setattr(dispatch.BackgroundDeliveries, "submit", lambda self, request_id: False)
        processing.run_batch("run-dies-after-complete", LANE, settings)
    row = store.get(request_id, settings=settings)
    assert row["status"] == "completed" and row["deliveries_due"]
    assert list_deliveries(request_id, account, settings) == []

    now = datetime.now(UTC)
    deliver_due(settings, now=now)  # still within its run's grace: left to that run
    assert list_deliveries(request_id, account, settings) == []
    later = now + RECORD_GRACE
    # A tick whose time budget is spent records what is owed but starts no attempt.
    assert deliver_due(settings, now=later + ATTEMPT_LEASE, limit=1000, budget_seconds=0) == []
    assert {row["status"] for row in list_deliveries(request_id, account, settings)} == {"pending"}
    assert not store.get(request_id, settings=settings)["deliveries_due"]
    for tick in range(3):  # the delivery sensor's ticks; later ones find nothing to send
        deliver_due(settings, now=later + (tick + 1) * ATTEMPT_LEASE, limit=1000)
    assert len(webhook_receiver.received(path)) == 1
    assert len(smtp_server.messages_to(address)) == 1
    assert _deliveries(request_id, account, settings) == {
        "email": ("sent", 1), "webhook": ("sent", 1), "in_app": ("sent", 1)}
    assert not store.get(request_id, settings=settings)["deliveries_due"]


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs, nothing catches it."""


def test_worker_dying_during_an_attempt_is_retried_after_the_lease_once(delivering, webhook_receiver,
                                                                        monkeypatch):
    settings = delivering
    account = _account(settings)
    path = f"/mid-attempt-{secrets.token_hex(4)}"
    other = _request(settings, account, webhook_url=webhook_receiver.url(path))
    real_send = dispatch._send

    def die_on_webhook(delivery, report, settings):
        if delivery["channel"] == "webhook":
            raise _Killed
        return real_send(delivery, report, settings)

    with monkeypatch.context() as patched:
        patched.setattr(dispatch, "_send", die_on_webhook)
        with pytest.raises(_Killed):
            processing.process_request(other, settings, run_id="run-mid-attempt-2")
    assert store.get(other, settings=settings)["status"] == "completed"
    now = datetime.now(UTC)
    deliver_due(settings, now=now + RECORD_GRACE, limit=1000)  # the attempt's lease still holds
    assert webhook_receiver.received(path) == []
    for tick in range(1, 4):
        deliver_due(settings, now=now + tick * ATTEMPT_LEASE + RECORD_GRACE, limit=1000)
    assert len(webhook_receiver.received(path)) == 1
    assert _deliveries(other, account, settings)["webhook"] == ("sent", 1)
