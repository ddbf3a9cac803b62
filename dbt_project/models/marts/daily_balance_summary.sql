{#
  Balance transactions per account, UTC day, currency and reporting category: the 15-minute
  mart rolled up to days (its totals equal the fact's: tests/assert_daily_balance_summary_matches_fact.sql).
#}
{{ config(
    engine='MergeTree()',
    order_by='(account_id, day, currency, reporting_category)',
    partition_by='toYYYYMM(day)',
) }}

select
    account_id,
    day,
    currency,
    reporting_category,
    toUInt64(sum(transaction_count)) as transaction_count,
    toInt64(sum(gross_minor)) as gross_minor,
    toInt64(sum(fee_minor)) as fee_minor,
    toInt64(sum(net_minor)) as net_minor,
    any(currency_exponent) as currency_exponent
from {{ ref('balance_transactions_15m') }}
group by account_id, day, currency, reporting_category
