-- On-demand (and scheduled/backfill) report requests and the API keys that create them.
-- Ids are opaque text ("rpt_<random>") so they can be shown to users Stripe-style.

CREATE TABLE IF NOT EXISTS report_requests (
    id                  text PRIMARY KEY,
    account_id          text NOT NULL,
    report_type         text NOT NULL,
    parameters          jsonb NOT NULL DEFAULT '{}'::jsonb,
    format              text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'canceled', 'expired')),
    progress            integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error_message       text,
    file_key            text,
    file_size_bytes     bigint,
    row_count           bigint,
    sha256              text,
    manifest            jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    completed_at        timestamptz,
    expires_at          timestamptz,
    canceled_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    requested_by        text,
    email_recipients    text[],
    webhook_url         text,
    priority            integer NOT NULL DEFAULT 10,  -- on-demand 10, scheduled 0, backfill -10
    attempt_count       integer NOT NULL DEFAULT 0,
    idempotency_key     text,
    -- sha256 of the canonical request body: same Idempotency-Key with another body is a conflict.
    request_fingerprint text,
    -- The replication watermark the report was computed at (its "data as of").
    data_version        timestamptz,
    dagster_run_id      text,
    source              text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'schedule', 'backfill'))
);

CREATE INDEX IF NOT EXISTS idx_reports_account ON report_requests (account_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_reports_status ON report_requests (status, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS uq_reports_idempotency
    ON report_requests (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS api_keys (
    id            text PRIMARY KEY,
    account_id    text NOT NULL,
    name          text NOT NULL DEFAULT '',
    key_hash      text NOT NULL UNIQUE,  -- sha256 hex of the secret; the secret is never stored
    prefix        text NOT NULL,         -- first characters, for display ("rk_live_ab12…")
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

CREATE INDEX IF NOT EXISTS idx_api_keys_account ON api_keys (account_id);

-- Per-account token bucket for POST /v1/reports, shared by every API process.
CREATE TABLE IF NOT EXISTS api_rate_limits (
    account_id    text PRIMARY KEY,
    tokens        double precision NOT NULL,
    refilled_at   timestamptz NOT NULL DEFAULT now()
);
