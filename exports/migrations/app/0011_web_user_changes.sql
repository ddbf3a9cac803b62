-- Who changed which web user, when, and how (the Users page shows it; audits read it): role
-- changes, disabling and re-enabling, and creation. `changed_by` is the acting admin's email, or
-- "cli" / "demo" for changes made outside the app. Rows are never updated or deleted by the app.

CREATE TABLE web_user_changes (
    id          bigserial PRIMARY KEY,
    account_id  text NOT NULL,
    user_id     text NOT NULL REFERENCES web_users (id) ON DELETE CASCADE,
    change      text NOT NULL CHECK (change IN ('created', 'role', 'disabled', 'enabled')),
    old_value   text,                                   -- the role before a role change
    new_value   text,                                   -- the role after it (or at creation)
    changed_by  text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_user_changes_account ON web_user_changes (account_id, at DESC);

ALTER TABLE web_users ADD COLUMN disabled_by text;
