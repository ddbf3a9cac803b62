{{ config(
    engine='MergeTree()',
    order_by='(account_id, day, currency, reporting_category)',
    partition_by='toYYYYMM(day)',
) }}

select
    account_id,
    {{ utc_day('created_at') }} as day,
    currency,
    reporting_category,
    count() as transaction_count,
    sum(gross_minor) as gross_minor,
    sum(fee_minor) as fee_minor,
    sum(net_minor) as net_minor,
    any(currency_exponent) as currency_exponent
from {{ ref('fct_balance_transactions') }}
group by account_id, day, currency, reporting_category
