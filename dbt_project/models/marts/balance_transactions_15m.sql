{#
  The ledger pre-aggregated per account, 15-minute UTC bucket, currency, reporting category and
  settling payout's effective time: what every summary report reads (exports/reports/types/
  buckets.py). 15-minute buckets align with every UTC offset in use, so sums per local day in
  any IANA timezone are sums of whole buckets; report edges that fall inside a bucket are read
  from the fact (exact to the microsecond).

  Incremental (delete+insert on account_id, day): every (account, UTC day) holding a fact row
  (re)written since this table's last build is recomputed from the fact in full, so a row that
  moved to another group (settled by a payout) leaves no trace in its old one.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='account_id, day',
    engine='MergeTree()',
    order_by='(account_id, currency, bucket_start, reporting_category)',
    partition_by='toYYYYMM(day)',
) }}

{% set window = partition_window() %}
{% set catch_up = window is none or window.catch_up %}

with
{% if is_incremental() %}
changed_days as (
    select distinct account_id, {{ utc_day('created_at') }} as day
    from {{ ref('fct_balance_transactions') }}
    where
        {% if catch_up %}
        mart_loaded_at > (select max(fact_loaded_at) from {{ this }})
        {% if window %} or {% endif %}
        {% endif %}
        {% if window %}{{ in_window('created_at', window) }}{% endif %}
),
{% endif %}

payouts as (
    select payout_id, created_at from {{ ref('fct_payouts') }}
)

select
    fct.account_id as account_id,
    {{ utc_day('fct.created_at') }} as day,
    {{ bucket_15m('fct.created_at') }} as bucket_start,
    fct.currency as currency,
    fct.reporting_category as reporting_category,
    -- when the payout that settled these rows took effect; NULL while unsettled (a settling
    -- payout missing from fct_payouts reads as 1970, i.e. paid out, like the fact-based query)
    if(ifNull(fct.automatic_payout_id, '') = '', null,
       if(payouts.payout_id = '', toDateTime64(0, 6, 'UTC'), payouts.created_at)) as payout_effective_at,
    any(fct.currency_exponent) as currency_exponent,
    toUInt64(count()) as transaction_count,
    toInt64(sum(fct.gross_minor)) as gross_minor,
    toInt64(sum(fct.fee_minor)) as fee_minor,
    toInt64(sum(fct.net_minor)) as net_minor,
    toUInt64(countIf(fct.fee_minor != 0)) as fee_count,
    max(fct.mart_loaded_at) as fact_loaded_at
from {{ ref('fct_balance_transactions') }} as fct
left join payouts on payouts.payout_id = fct.automatic_payout_id
{% if is_incremental() %}
where (fct.account_id, {{ utc_day('fct.created_at') }}) in (select account_id, day from changed_days)
{% endif %}
group by account_id, day, bucket_start, currency, reporting_category, payout_effective_at
