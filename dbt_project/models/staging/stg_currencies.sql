select
    code as currency,
    toUInt8(exponent) as currency_exponent,
    name as currency_name,
    {{ utc_ts('updated_at') }} as updated_at
from {{ latest('raw', 'currencies') }}
