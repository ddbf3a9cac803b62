{{ config(engine='MergeTree()', order_by='account_id') }}

select
    account_id,
    name,
    email,
    country,
    timezone,
    default_currency,
    payout_schedule,
    created_at
from {{ ref('stg_accounts') }}
