"""Reports domain: report requests become batched Dagster runs.

- `report_request_sensor` keeps batch runs of `report_job` alive per lane (on-demand, bulk) while
  claimable requests exist; each run claims the most urgent requests one by one
  (exports.requests.processing.run_batch). Run keys count batches, never requests.
- `report_run_failure_sensor` hands the requests a failed run left unfinished to the lifecycle
  (retry later or fail with a reason).
- `report_watchdog_sensor` rescues requests whose run died without Dagster noticing (silent
  heartbeat, confirmed twice; never a queued or starting run) and fails requests that waited for
  data past their deadline.
"""
