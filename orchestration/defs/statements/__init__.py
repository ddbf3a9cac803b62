"""Statements domain: per-account statements as a partitioned asset (month x account shard).

- `statements` (assets.py): one partition = one month's packs for the accounts of one shard;
  backfills batch up to MAX_PARTITIONS_PER_RUN partitions per run; op config `account_ids`
  re-runs chosen accounts only. Per-account status lives in report_requests (exports.statements).
- `statements_data_on_time` (assets.py): asset check failing when the month that just closed is
  still waiting for data past its deadline.
- `statements_month_end_sensor` (schedules.py): materializes the month that just closed once the
  data is available in every account's timezone; waits (SkipReason) while it is not; past the
  deadline logs an error and runs the check above.
"""
