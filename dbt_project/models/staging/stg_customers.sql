select
    id as customer_id,
    account_id,
    email as customer_email,
    name as customer_name,
    description as customer_description,
    {{ utc_ts('created_at') }} as created_at,
    {{ utc_ts('updated_at') }} as updated_at
from {{ latest('raw', 'customers') }}
