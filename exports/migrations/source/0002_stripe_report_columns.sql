-- Columns Stripe's reports print that the platform can carry (issue 16):
-- invoice_id: the invoice a charge paid (in_...; NULL for one-off charges), printed as
--   `invoice_id` next to the charge's balance transactions and payments.
-- reversed_at: when a payout was reversed (NULL unless it was), Stripe's `payout_reversed_at`.
-- Nullable with no default: adding them rewrites no rows.
ALTER TABLE payments ADD COLUMN invoice_id text;
ALTER TABLE payouts ADD COLUMN reversed_at timestamptz;
