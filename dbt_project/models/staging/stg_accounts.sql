select
    id as account_id,
    name,
    email,
    country,
    timezone,
    default_currency,
    payout_schedule,
    toInt32(payout_delay_days) as payout_delay_days,
    {{ utc_ts('created_at') }} as created_at,
    {{ utc_ts('updated_at') }} as updated_at
from {{ latest('raw', 'accounts') }}
