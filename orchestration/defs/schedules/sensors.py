"""Sensors that drive report templates and delivery retries.

Both do their (small, idempotent) database work inside the sensor evaluation instead of
launching runs: the scheduler only inserts report_requests rows — report_request_sensor then
turns them into report runs — and a delivery tick sends what is due for at most half a minute.
Correctness never depends on the tick interval: a missed or doubled tick is harmless because
schedule_due_reports is exactly-once per (template, due time) and deliveries are claimed per row.
"""

from datetime import datetime, timezone

import dagster as dg

from exports.delivery import deliver_due
from exports.scheduling import schedule_due_reports

# A tick starts delivery attempts for this long (each is bounded by
# settings.webhook_timeout_seconds, 10 s by default), so it ends well under Dagster's 60 s sensor
# evaluation timeout; in-app notices and healthy endpoints take milliseconds, so a dead batch's
# leftovers go out in a tick or two. Whatever is left is due again on the next tick.
DELIVERY_SECONDS_PER_TICK = 30.0
DELIVERIES_PER_TICK = 1000


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
    attempted = deliver_due(now=datetime.now(timezone.utc), limit=DELIVERIES_PER_TICK,
                            budget_seconds=DELIVERY_SECONDS_PER_TICK)
    if attempted:
        context.log.info(f"attempted {len(attempted)} due deliver(ies): {attempted[:50]}")
    return dg.SkipReason(f"attempted {len(attempted)} due deliveries")
