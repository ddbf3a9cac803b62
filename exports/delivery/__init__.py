"""Delivery of finished reports: email (SMTP), signed webhooks with retries, in-app notifications.

Processing calls `notify_report_finished(request_id)` once a request is completed or failed; it
records one `deliveries` row per (channel, target, event) — idempotently, so a retried run never
sends twice — and attempts each pending one. `retry_due_deliveries(settings, now)` drives the
retry loop (exponential backoff via `deliveries.next_attempt_at`).
"""

from __future__ import annotations

from exports.delivery.dispatch import notify_report_finished, retry_due_deliveries

__all__ = ["notify_report_finished", "retry_due_deliveries"]
