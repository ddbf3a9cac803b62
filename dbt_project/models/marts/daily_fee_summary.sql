{#
  Fees per account, UTC day, currency and fee type. The fee type and the fee amount of each
  reporting category come from the `reporting_categories` seed, the definition fees.summary
  renders too (exports/reporting_categories.py): `fee` = the row's fee, `negated_net` = standalone
  fee transactions, which carry the fee as their amount (-150 gross, 0 fee).
  Incremental: the days whose 15-minute rows changed are recomputed (macros/rollup.sql).
#}
{{ daily_rollup_config(order_by='(account_id, day, currency, fee_type)') }}

select
    agg.account_id as account_id,
    agg.day as day,
    agg.currency as currency,
    categories.fee_type as fee_type,
    toUInt64(sum(if(categories.fee_amount = 'negated_net', agg.transaction_count, agg.fee_count))) as fee_count,
    toInt64(sum(if(categories.fee_amount = 'negated_net', -agg.net_minor, agg.fee_minor))) as fee_minor,
    any(agg.currency_exponent) as currency_exponent,
    max(agg.fact_loaded_at) as fact_loaded_at
from {{ ref('balance_transactions_15m') }} as agg
inner join {{ ref('reporting_categories') }} as categories
    on categories.reporting_category = agg.reporting_category
{{ where_changed_15m_days('agg.account_id', 'agg.day') }}
group by account_id, day, currency, fee_type
having fee_count > 0
