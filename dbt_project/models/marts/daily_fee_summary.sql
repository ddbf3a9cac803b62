{#
  Fees per account, UTC day and currency: `processing` = fees charged on transactions (charges,
  refunds, ...), `dispute` = dispute fees, `platform` = standalone fee transactions, whose fee is
  the negated net (they carry the fee as their amount, e.g. -150 gross, 0 fee).
#}
{{ config(
    engine='MergeTree()',
    order_by='(account_id, day, currency, fee_type)',
    partition_by='toYYYYMM(day)',
) }}

select
    account_id,
    {{ utc_day('fct.created_at') }} as day,
    currency,
    multiIf(reporting_category = 'fee', 'platform',
            reporting_category = 'dispute', 'dispute',
            'processing') as fee_type,
    count() as fee_count,
    sum(if(fct.reporting_category = 'fee', -fct.net_minor, fct.fee_minor)) as fee_minor,
    any(currency_exponent) as currency_exponent
from {{ ref('fct_balance_transactions') }} as fct
where fct.reporting_category = 'fee' or fct.fee_minor != 0
group by account_id, day, currency, fee_type
