"""Per-account statements: the files every account gets each period, as ordinary reports.

Pure Python (no Dagster); orchestration/defs/statements/ is the thin Dagster layer over it.

    shards     which of the SHARD_COUNT stable account shards an account belongs to
    periods    statement periods (months, or days) cut in each account's timezone
    items      the configurable statement set (report type + format per file)
    accounts   the accounts a period's statements are owed to (source database)
    packs      one account's pack: idempotent report_requests rows rendered by the request
               processing code; a shard's packs for one period; data-availability checks

Why month x shard partitions (and not month x account) is explained, with numbers, in
docs/statements.md.
"""
