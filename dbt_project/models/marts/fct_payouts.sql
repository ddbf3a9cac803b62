{{ config(
    engine='MergeTree()',
    order_by='(account_id, created_at, payout_id)',
    partition_by='toYYYYMM(created_at)',
) }}

with settled as (
    select
        payout_id,
        count() as settled_count,
        sum(gross_minor) as settled_gross_minor,
        sum(fee_minor) as settled_fee_minor,
        sum(net_minor) as settled_net_minor
    from {{ ref('stg_balance_transactions') }}
    where payout_id is not null and payout_id != ''
    group by payout_id
),

own_txn as (
    select source_id as payout_id, any(balance_transaction_id) as payout_balance_transaction_id
    from {{ ref('stg_balance_transactions') }}
    where reporting_category = 'payout'
    group by source_id
)

select
    payouts.payout_id as payout_id,
    payouts.account_id as account_id,
    payouts.created_at as created_at,
    payouts.arrival_date as arrival_date,
    payouts.currency as currency,
    currencies.currency_exponent as currency_exponent,
    payouts.amount_minor as amount_minor,
    payouts.status as status,
    payouts.automatic as automatic,
    payouts.type as type,
    payouts.method as method,
    payouts.description as description,
    payouts.destination_id as destination_id,
    payouts.reversed_at as reversed_at,
    nullIf(own_txn.payout_balance_transaction_id, '') as payout_balance_transaction_id,
    toUInt64(settled.settled_count) as settled_count,
    {{ minor('settled.settled_gross_minor') }} as settled_gross_minor,
    {{ minor('settled.settled_fee_minor') }} as settled_fee_minor,
    {{ minor('settled.settled_net_minor') }} as settled_net_minor,
    payouts.updated_at as updated_at
from {{ ref('stg_payouts') }} as payouts
inner join {{ ref('stg_currencies') }} as currencies on currencies.currency = payouts.currency
left join settled on settled.payout_id = payouts.payout_id
left join own_txn on own_txn.payout_id = payouts.payout_id
