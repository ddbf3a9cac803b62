-- The report lifecycle (exports/requests/lifecycle.py) on report_requests: why a pending request
-- is not being worked on yet, and what it waits for. Batch runs claim the most urgent claimable
-- request next (priority, then age), so the claim index leads with priority.

ALTER TABLE report_requests
    -- Shown to users while a request waits: "waiting for data up to …", "retrying after …".
    ADD COLUMN status_reason text,
    -- Retry backoff: a request re-queued after a failed attempt is not claimed before this.
    ADD COLUMN not_before timestamptz,
    -- A scheduled request whose interval ends after the data available is claimed only once
    -- replication's "data available up to" (min watermark) has reached this instant.
    ADD COLUMN waiting_for_data_until timestamptz;

CREATE INDEX IF NOT EXISTS idx_reports_claim
    ON report_requests (priority DESC, created_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS idx_reports_run
    ON report_requests (dagster_run_id) WHERE status = 'processing';
