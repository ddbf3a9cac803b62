{#
  balance_transactions_15m rolled up to UTC days, same dimensions (payout_effective_at included):
  summaries that need no per-local-day split (balance, activity, payouts, ending-balance
  reconciliation) read whole UTC days from here, 15-minute buckets for the partial days at the
  edges and the fact inside an edge bucket (exports/reports/types/buckets.py).
  Incremental: the days whose 15-minute rows changed are recomputed (macros/rollup.sql).
#}
{{ daily_rollup_config(order_by='(account_id, currency, day, reporting_category)') }}

select
    account_id,
    day,
    currency,
    reporting_category,
    payout_effective_at,
    any(currency_exponent) as currency_exponent,
    toUInt64(sum(transaction_count)) as transaction_count,
    toInt64(sum(gross_minor)) as gross_minor,
    toInt64(sum(fee_minor)) as fee_minor,
    toInt64(sum(net_minor)) as net_minor,
    toUInt64(sum(fee_count)) as fee_count,
    max(fact_loaded_at) as fact_loaded_at
from {{ ref('balance_transactions_15m') }}
{{ where_changed_15m_days() }}
group by account_id, day, currency, reporting_category, payout_effective_at
