-- The payment platform's OLTP schema (the replication source).
-- Money is integer minor units (bigint) everywhere; the currency's exponent says how many of
-- those make a major unit (USD 2, JPY 0, KWD 3). Every table carries created_at/updated_at:
-- updated_at drives incremental replication and must be bumped on every change.

CREATE TABLE currencies (
    code        text PRIMARY KEY CHECK (code = lower(code) AND length(code) = 3),
    exponent    smallint NOT NULL CHECK (exponent BETWEEN 0 AND 4),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO currencies (code, exponent, name, created_at, updated_at) VALUES
    ('usd', 2, 'US Dollar',           '2020-01-01', '2020-01-01'),
    ('eur', 2, 'Euro',                '2020-01-01', '2020-01-01'),
    ('gbp', 2, 'Pound Sterling',      '2020-01-01', '2020-01-01'),
    ('aud', 2, 'Australian Dollar',   '2020-01-01', '2020-01-01'),
    ('cad', 2, 'Canadian Dollar',     '2020-01-01', '2020-01-01'),
    ('jpy', 0, 'Yen',                 '2020-01-01', '2020-01-01'),
    ('krw', 0, 'Won',                 '2020-01-01', '2020-01-01'),
    ('kwd', 3, 'Kuwaiti Dinar',       '2020-01-01', '2020-01-01'),
    ('bhd', 3, 'Bahraini Dinar',      '2020-01-01', '2020-01-01');

CREATE TABLE accounts (
    id                  text PRIMARY KEY,                 -- acct_...
    name                text NOT NULL,
    email               text NOT NULL,
    country             char(2) NOT NULL,
    timezone            text NOT NULL,                    -- IANA, e.g. Europe/Berlin
    default_currency    text NOT NULL REFERENCES currencies(code),
    payout_schedule     text NOT NULL DEFAULT 'daily' CHECK (payout_schedule IN ('daily', 'weekly', 'manual')),
    payout_delay_days   smallint NOT NULL DEFAULT 2,      -- charge -> available_on delay
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);

CREATE TABLE customers (
    id          text PRIMARY KEY,                         -- cus_...
    account_id  text NOT NULL REFERENCES accounts(id),
    email       text,
    name        text,
    description text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX customers_account_idx ON customers (account_id);
CREATE INDEX customers_updated_idx ON customers (updated_at);

-- Charges. status: succeeded | failed | pending | refunded (fully) | disputed.
CREATE TABLE payments (
    id                   text PRIMARY KEY,                -- ch_...
    account_id           text NOT NULL REFERENCES accounts(id),
    customer_id          text REFERENCES customers(id),
    payment_intent_id    text,                            -- pi_...
    amount               bigint NOT NULL CHECK (amount > 0),
    amount_refunded      bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    currency             text NOT NULL REFERENCES currencies(code),
    status               text NOT NULL CHECK (status IN ('succeeded', 'failed', 'pending', 'refunded', 'disputed')),
    payment_method_type  text NOT NULL,                   -- card, sepa_debit, ...
    card_brand           text,
    card_funding         text,
    card_country         char(2),
    description          text,
    statement_descriptor text,
    failure_code         text,
    metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX payments_account_created_idx ON payments (account_id, created_at);
CREATE INDEX payments_updated_idx ON payments (updated_at);

CREATE TABLE refunds (
    id          text PRIMARY KEY,                         -- re_...
    account_id  text NOT NULL REFERENCES accounts(id),
    payment_id  text NOT NULL REFERENCES payments(id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    text NOT NULL REFERENCES currencies(code),
    status      text NOT NULL CHECK (status IN ('succeeded', 'pending', 'failed', 'canceled')),
    reason      text,                                     -- requested_by_customer, duplicate, fraudulent
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id);
CREATE INDEX refunds_updated_idx ON refunds (updated_at);

CREATE TABLE disputes (
    id          text PRIMARY KEY,                         -- dp_...
    account_id  text NOT NULL REFERENCES accounts(id),
    payment_id  text NOT NULL REFERENCES payments(id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    text NOT NULL REFERENCES currencies(code),
    status      text NOT NULL CHECK (status IN ('needs_response', 'under_review', 'won', 'lost')),
    reason      text NOT NULL,                            -- fraudulent, product_not_received, ...
    closed_at   timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX disputes_payment_idx ON disputes (payment_id);
CREATE INDEX disputes_updated_idx ON disputes (updated_at);

-- Automatic payouts sweep the available balance to the merchant's bank.
-- amount is positive (money leaving the platform balance); its balance transaction has net = -amount.
CREATE TABLE payouts (
    id              text PRIMARY KEY,                     -- po_...
    account_id      text NOT NULL REFERENCES accounts(id),
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL REFERENCES currencies(code),
    status          text NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
    automatic       boolean NOT NULL DEFAULT true,
    type            text NOT NULL DEFAULT 'bank_account',
    method          text NOT NULL DEFAULT 'standard',
    description     text,
    destination_id  text,                                 -- ba_...
    arrival_date    date NOT NULL,
    created_at      timestamptz NOT NULL,                 -- the payout's effective time
    updated_at      timestamptz NOT NULL
);
CREATE INDEX payouts_account_created_idx ON payouts (account_id, created_at);
CREATE INDEX payouts_updated_idx ON payouts (updated_at);

-- The ledger: one row per change to an account's balance.
-- net = amount - fee. payout_id is the automatic payout that settled this transaction
-- (NULL while unsettled, and for the payout's own transaction). A payout's amount equals the sum
-- of the nets it settles, so that sum plus the payout's own transaction (net = -amount) is zero.
CREATE TABLE balance_transactions (
    id                  text PRIMARY KEY,                 -- txn_...
    account_id          text NOT NULL REFERENCES accounts(id),
    amount              bigint NOT NULL,                  -- gross, signed
    fee                 bigint NOT NULL DEFAULT 0,
    net                 bigint NOT NULL,
    currency            text NOT NULL REFERENCES currencies(code),
    type                text NOT NULL,                    -- charge, refund, adjustment, payout, payout_failure, stripe_fee, ...
    reporting_category  text NOT NULL CHECK (reporting_category IN (
                            'charge', 'charge_failure', 'refund', 'refund_failure', 'dispute',
                            'dispute_reversal', 'fee', 'other_adjustment', 'payout',
                            'payout_reversal', 'tax', 'topup', 'topup_reversal')),
    source_id           text,                             -- ch_/re_/dp_/po_ id of what caused it
    description         text,
    status              text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'pending')),
    payout_id           text REFERENCES payouts(id),
    available_on        timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT balance_transactions_net_check CHECK (net = amount - fee)
);
CREATE INDEX balance_transactions_account_created_idx ON balance_transactions (account_id, created_at);
CREATE INDEX balance_transactions_payout_idx ON balance_transactions (payout_id);
CREATE INDEX balance_transactions_updated_idx ON balance_transactions (updated_at);
CREATE INDEX balance_transactions_source_idx ON balance_transactions (source_id);
