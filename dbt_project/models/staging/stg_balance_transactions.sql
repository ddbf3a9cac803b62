select
    id as balance_transaction_id,
    account_id,
    {{ minor('amount') }} as gross_minor,
    {{ minor('fee') }} as fee_minor,
    {{ minor('net') }} as net_minor,
    currency,
    type,
    reporting_category,
    source_id,
    description,
    status,
    payout_id,
    {{ utc_ts('available_on') }} as available_on,
    {{ utc_ts('created_at') }} as created_at,
    {{ utc_ts('updated_at') }} as updated_at
from {{ latest('raw', 'balance_transactions') }}
