select
    id as payout_id,
    account_id,
    {{ minor('amount') }} as amount_minor,
    currency,
    status,
    toBool(automatic) as automatic,
    type,
    method,
    description,
    destination_id,
    toDate(arrival_date) as arrival_date,
    if(reversed_at is null, null, {{ utc_ts('reversed_at') }}) as reversed_at,
    {{ utc_ts('created_at') }} as created_at,
    {{ utc_ts('updated_at') }} as updated_at
from {{ latest('raw', 'payouts') }}
