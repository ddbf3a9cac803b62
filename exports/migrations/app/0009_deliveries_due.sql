-- Deliveries are their own step, not part of rendering a batch: the UPDATE that completes or
-- fails a report sets deliveries_due in the same statement, and the dispatcher clears it in the
-- transaction that records the report's deliveries rows. A worker that dies in between leaves
-- the flag set, and the delivery sensor records and sends them: nothing owed is lost.
ALTER TABLE report_requests ADD COLUMN deliveries_due boolean NOT NULL DEFAULT false;
CREATE INDEX idx_reports_deliveries_due ON report_requests (completed_at) WHERE deliveries_due;
