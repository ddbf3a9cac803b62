{#
  Balance transactions per account, UTC day, currency and reporting category: the 15-minute
  mart rolled up to days (its totals equal the fact's: tests/assert_daily_balance_summary_matches_fact.sql).
  Incremental: the days whose 15-minute rows changed are recomputed (macros/rollup.sql).
#}
{{ daily_rollup_config(order_by='(account_id, day, currency, reporting_category)') }}

select
    account_id,
    day,
    currency,
    reporting_category,
    toUInt64(sum(transaction_count)) as transaction_count,
    toInt64(sum(gross_minor)) as gross_minor,
    toInt64(sum(fee_minor)) as fee_minor,
    toInt64(sum(net_minor)) as net_minor,
    any(currency_exponent) as currency_exponent,
    max(fact_loaded_at) as fact_loaded_at
from {{ ref('balance_transactions_15m') }}
{{ where_changed_15m_days() }}
group by account_id, day, currency, reporting_category
