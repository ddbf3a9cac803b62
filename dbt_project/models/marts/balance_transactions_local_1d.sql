{#
  balance_transactions_15m rolled up to days in each account's own timezone (dim_accounts), where
  most reports are cut: a year is at most 366 rows per currency, category and payout time.
  Summaries whose report timezone is the one the rows were cut in read whole local days from
  here and only the ragged edges from the 15-minute grain and the fact
  (exports/reports/types/buckets.py). Exact while every local midnight falls on a 15-minute UTC
  boundary, which the reports check before reading a day (all offsets in use today do).

  Incremental (delete+insert on account_id, local_day): the local days overlapping a UTC day
  whose 15-minute rows changed are recomputed, and every day of an account with no rows here (a
  new account, or one whose timezone changed: the pre_hook deleted its rows).
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='account_id, local_day',
    engine='MergeTree()',
    order_by='(account_id, local_day, currency, reporting_category)',
    partition_by='toYYYYMM(local_day)',
    pre_hook="{{ delete_accounts_whose_timezone_changed() }}",
) }}

{% set timezones = account_timezones() %}

with
{% if is_incremental() %}
changed_utc_days as (
    {{ changed_15m_days(this) }}
),
held_accounts as (
    select distinct account_id from {{ this }}
),
{% endif %}
accounts as (
    select account_id, timezone from {{ ref('dim_accounts') }}
)

{% for tz in timezones %}
{% if not loop.first %}union all{% endif %}
select
    b.account_id as account_id,
    '{{ tz }}' as timezone,
    toDate(b.bucket_start, '{{ tz }}') as local_day,
    min(b.bucket_start) as first_bucket_start,
    b.currency as currency,
    b.reporting_category as reporting_category,
    b.payout_effective_at as payout_effective_at,
    any(b.currency_exponent) as currency_exponent,
    toUInt64(sum(b.transaction_count)) as transaction_count,
    toInt64(sum(b.gross_minor)) as gross_minor,
    toInt64(sum(b.fee_minor)) as fee_minor,
    toInt64(sum(b.net_minor)) as net_minor,
    toUInt64(sum(b.fee_count)) as fee_count,
    max(b.fact_loaded_at) as fact_loaded_at
from {{ ref('balance_transactions_15m') }} as b
where b.account_id in (select account_id from accounts where timezone = '{{ tz }}')
{% if is_incremental() %}
    and (
        b.account_id not in (select account_id from held_accounts)
        -- a UTC day overlaps the local days of its first and its last instant
        or (b.account_id, toDate(b.bucket_start, '{{ tz }}')) in (
            select account_id, toDate(toDateTime(day, 'UTC'), '{{ tz }}') from changed_utc_days
            union all
            select account_id, toDate(toDateTime(day, 'UTC') + 86399, '{{ tz }}') from changed_utc_days)
    )
{% endif %}
group by account_id, local_day, currency, reporting_category, payout_effective_at
{% endfor %}
