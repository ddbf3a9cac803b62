-- A scheduled report that found its account at the pending cap is deferred, not dropped: the
-- scheduler keeps the due time owed, retries at next_run_at, and says why here (shown on the
-- template as deferred_reason). NULL when the schedule is not held back.
ALTER TABLE report_templates ADD COLUMN deferred_reason text;
