"""Reports domain: on-demand report requests become Dagster runs.

- `report_request_sensor` turns each pending row of report_requests into exactly one run of
  `report_job` (run_key = request id + attempt), tagged for the queue's per-account and
  embedded-warehouse limits and prioritised by the row's priority.
- `report_run_failure_sensor` fails the request with a reason when its run fails for good.
- `report_watchdog_sensor` cancels queued runs of canceled requests and rescues requests whose
  worker died (stale heartbeat): it fails the dead run so Dagster retries it, or re-queues/fails
  the row when no run is left to retry.
"""
