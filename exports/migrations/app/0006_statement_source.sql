-- Per-account statements (exports/statements) are reports like any other, recorded with
-- source 'statement' so history, re-download, retention and delivery work unchanged. Their ids
-- are deterministic (one row per account, period and statement item), so a re-run inserts nothing.
ALTER TABLE report_requests DROP CONSTRAINT IF EXISTS report_requests_source_check;
ALTER TABLE report_requests ADD CONSTRAINT report_requests_source_check
    CHECK (source IN ('api', 'schedule', 'backfill', 'statement'));
