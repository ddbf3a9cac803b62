select
    id as dispute_id,
    account_id,
    payment_id,
    {{ minor('amount') }} as amount_minor,
    currency,
    status,
    reason,
    closed_at,
    {{ utc_ts('created_at') }} as created_at,
    {{ utc_ts('updated_at') }} as updated_at
from {{ latest('raw', 'disputes') }}
