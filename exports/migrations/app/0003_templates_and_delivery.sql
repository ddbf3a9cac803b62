-- Report templates (saved report definitions with an optional schedule) and the delivery
-- bookkeeping: one row per (request, channel, target, event) plus every attempt made for it.

CREATE TABLE report_templates (
    id                  text PRIMARY KEY,                 -- rtpl_...
    account_id          text NOT NULL,
    name                varchar(255) NOT NULL,
    description         text,
    report_type         varchar(100) NOT NULL,
    default_parameters  jsonb NOT NULL DEFAULT '{}'::jsonb,
    format              varchar(20) NOT NULL,
    -- Scheduling. The cron expression is evaluated in `timezone`, so "0 6 * * *" in
    -- Europe/Berlin stays 06:00 local across DST changes.
    schedule_enabled    boolean NOT NULL DEFAULT false,
    schedule_cron       varchar(100),
    timezone            text NOT NULL DEFAULT 'UTC',
    relative_range      text,                             -- e.g. yesterday, last_month
    -- 'all': every due time missed during downtime gets its own report; 'latest': only the last.
    catch_up            text NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('all', 'latest')),
    -- The newest due time for which a request was created; due times in
    -- (last_scheduled_for, now] are what the next tick schedules.
    last_scheduled_for  timestamptz,
    next_run_at         timestamptz,
    -- Delivery
    email_recipients    text[] NOT NULL DEFAULT '{}',
    webhook_url         varchar(500),
    enabled             boolean NOT NULL DEFAULT true,    -- false = soft-deleted / paused
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text,
    CHECK (NOT schedule_enabled OR schedule_cron IS NOT NULL)
);
CREATE INDEX report_templates_account ON report_templates (account_id, created_at DESC);
CREATE INDEX report_templates_due ON report_templates (next_run_at)
    WHERE enabled AND schedule_enabled;

-- One request per template and due time: a second tick, a second scheduler or a restart
-- inserts nothing (INSERT ... ON CONFLICT DO NOTHING).
ALTER TABLE report_requests
    ADD COLUMN template_id text REFERENCES report_templates (id) ON DELETE SET NULL,
    ADD COLUMN scheduled_for timestamptz;
ALTER TABLE report_requests
    ADD CONSTRAINT report_requests_template_due UNIQUE (template_id, scheduled_for);

-- Webhook signing secrets, one per account (whsec_...). Kept in the clear because signing
-- needs the secret itself; rotate by inserting a new row (the newest one signs).
CREATE TABLE webhook_secrets (
    id                  bigserial PRIMARY KEY,
    account_id          text NOT NULL,
    secret              text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_secrets_account ON webhook_secrets (account_id, created_at DESC);

CREATE TABLE deliveries (
    id                  bigserial PRIMARY KEY,
    request_id          text NOT NULL REFERENCES report_requests (id) ON DELETE CASCADE,
    account_id          text NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('email', 'webhook', 'in_app')),
    target              text NOT NULL,                    -- address, URL, or account id
    event               text NOT NULL CHECK (event IN ('report.succeeded', 'report.failed')),
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempt_count       integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    -- A retried report run (or a second call) never creates, hence never sends, twice.
    UNIQUE (request_id, channel, target, event)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    id                  bigserial PRIMARY KEY,
    delivery_id         bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt             integer NOT NULL,
    status              text NOT NULL CHECK (status IN ('sent', 'failed')),
    error               text,
    response_code       integer,
    at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (delivery_id, attempt)
);

CREATE TABLE notifications (
    id                  text PRIMARY KEY,                 -- ntf_...
    account_id          text NOT NULL,
    request_id          text REFERENCES report_requests (id) ON DELETE CASCADE,
    event               text NOT NULL,
    title               text NOT NULL,
    body                text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    read_at             timestamptz,
    UNIQUE (request_id, event)
);
CREATE INDEX notifications_account ON notifications (account_id, created_at DESC);
