"""Sensors that drive report templates and delivery retries.

Both do their (small, idempotent) database work inside the sensor evaluation instead of
launching runs: the scheduler only inserts report_requests rows — report_request_sensor then
turns them into report runs — and a retry tick sends at most a handful of due deliveries.
Correctness never depends on the tick interval: a missed or doubled tick is harmless because
schedule_due_reports is exactly-once per (template, due time) and deliveries are claimed per row.
"""

from datetime import datetime, timezone

import dagster as dg

from exports.delivery import deliver_due
from exports.scheduling import schedule_due_reports

# Each delivery attempt is bounded by settings.webhook_timeout_seconds; keep a tick well under
# the sensor evaluation timeout. Whatever is left is due again on the next tick.
RETRIES_PER_TICK = 5


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Create report requests for report templates whose schedule is due.")
def report_template_scheduler(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    created = schedule_due_reports(now=datetime.now(timezone.utc))
    if created:
        context.log.info(f"scheduled {len(created)} report request(s): {', '.join(created)}")
    return dg.SkipReason(f"created {len(created)} scheduled report request(s)")


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Send email/webhook deliveries a batch run left (it died or ran out of "
                       "time) and retry those whose backoff has elapsed.")
def delivery_retry_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    attempted = deliver_due(now=datetime.now(timezone.utc), limit=RETRIES_PER_TICK)
    if attempted:
        context.log.info(f"attempted {len(attempted)} due deliver(ies): {attempted}")
    return dg.SkipReason(f"attempted {len(attempted)} due deliveries")
