-- The web app's people: users of an account with a role, their sign-in sessions, sign-in
-- attempts (for per email+IP rate limits), and scopes on API keys (restricted keys).

CREATE TABLE web_users (
    id              text PRIMARY KEY,                      -- usr_...
    account_id      text NOT NULL,
    email           text NOT NULL,                         -- stored lower-cased
    password_hash   text NOT NULL,                         -- argon2id (argon2-cffi)
    role            text NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text,
    last_sign_in_at timestamptz,
    disabled_at     timestamptz
);
CREATE UNIQUE INDEX web_users_email ON web_users (email);
CREATE INDEX web_users_account ON web_users (account_id);

-- A session is a random cookie value; only its sha256 is stored, so a database read does not
-- hand out live sessions. Each session has its own CSRF (synchronizer) token.
CREATE TABLE web_sessions (
    token_hash      text PRIMARY KEY,
    user_id         text NOT NULL REFERENCES web_users (id) ON DELETE CASCADE,
    csrf_token      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL                   -- absolute end of the session
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

CREATE TABLE web_sign_in_attempts (
    id              bigserial PRIMARY KEY,
    email           text NOT NULL,
    ip              text NOT NULL,
    succeeded       boolean NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_sign_in_attempts_key ON web_sign_in_attempts (email, ip, at DESC);

-- NULL scopes = a standard key (everything the account may do through the API); a list = a
-- restricted key that may only do what its scopes name (api/auth.py enforces them).
ALTER TABLE api_keys ADD COLUMN scopes text[];
ALTER TABLE api_keys ADD COLUMN created_by text;
