-- Deliveries are their own step, not part of rendering a batch: the UPDATE that completes or
-- fails a report sets deliveries_due in the same statement, and the dispatcher clears it in the
-- transaction that records the report's deliveries rows. A worker that dies in between leaves
-- the flag set, and the delivery sensor records and sends them: nothing owed is lost.
ALTER TABLE report_requests ADD COLUMN deliveries_due boolean NOT NULL DEFAULT false;
CREATE INDEX idx_reports_deliveries_due ON report_requests (completed_at) WHERE deliveries_due;

-- Accounts take turns within a priority (store.claim_next claims by priority, then claim_tag):
-- a new request's tag is its account's previous tag at that priority plus one turn, or now if
-- that is later (exports.requests.store.CLAIM_TURN). An account that queues thousands at once gets
-- tags spread far ahead, so another account's request made meanwhile is claimed next, not after
-- the backlog; an account's own requests keep their order; a claim stays one index scan.
CREATE TABLE report_claim_turns (
    priority   integer NOT NULL,
    account_id text NOT NULL,
    last_tag   timestamptz NOT NULL,
    PRIMARY KEY (priority, account_id)
);
ALTER TABLE report_requests ADD COLUMN claim_tag timestamptz NOT NULL DEFAULT now();
UPDATE report_requests SET claim_tag = created_at WHERE status = 'pending';
DROP INDEX IF EXISTS idx_reports_claim;
CREATE INDEX idx_reports_claim_turn ON report_requests (priority DESC, claim_tag, id)
    WHERE status = 'pending';
