"""Delivery of finished reports: email (SMTP), signed webhooks with retries, in-app notifications.

Finishing a report marks its deliveries due (exports.requests.store); `record_deliveries` turns
the mark into one `deliveries` row per (channel, target, event) — idempotently, so a retried run
never sends twice — and `notify_report_finished` records and attempts them at once. A batch run
does that on its own threads (`BackgroundDeliveries`), so delivery never delays the next report;
`deliver_due(settings, now)` is the delivery sensor's tick: it records what a dead worker left
marked and attempts every delivery due (exponential backoff via `deliveries.next_attempt_at`).
"""

from __future__ import annotations

from exports.delivery.dispatch import (BackgroundDeliveries, deliver_due, notify_report_finished,
                                       record_deliveries, retry_due_deliveries)

__all__ = ["BackgroundDeliveries", "deliver_due", "notify_report_finished", "record_deliveries",
           "retry_due_deliveries"]
