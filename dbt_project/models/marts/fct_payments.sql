{{ config(
    engine='MergeTree()',
    order_by='(account_id, created_at, payment_id)',
    partition_by='toYYYYMM(created_at)',
) }}

with charge_txn as (
    select
        source_id as payment_id,
        sum(fee_minor) as fee_minor,
        sum(net_minor) as net_minor
    from {{ ref('stg_balance_transactions') }}
    where reporting_category = 'charge'
    group by source_id
),

disputed as (
    select payment_id, sum(amount_minor) as amount_disputed_minor
    from {{ ref('stg_disputes') }}
    group by payment_id
)

select
    payments.payment_id as payment_id,
    payments.account_id as account_id,
    payments.created_at as created_at,
    payments.currency as currency,
    currencies.currency_exponent as currency_exponent,
    payments.amount_minor as amount_minor,
    payments.amount_refunded_minor as amount_refunded_minor,
    {{ minor('disputed.amount_disputed_minor') }} as amount_disputed_minor,
    payments.status as status,
    payments.payment_method_type as payment_method_type,
    payments.card_brand as card_brand,
    payments.card_funding as card_funding,
    payments.card_country as card_country,
    payments.customer_id as customer_id,
    customers.customer_email as customer_email,
    customers.customer_name as customer_name,
    payments.description as description,
    payments.statement_descriptor as statement_descriptor,
    payments.failure_code as failure_code,
    payments.payment_intent_id as payment_intent_id,
    payments.payment_metadata as payment_metadata,
    payments.invoice_id as invoice_id,
    {{ minor('charge_txn.fee_minor') }} as fee_minor,
    {{ minor('charge_txn.net_minor') }} as net_minor,
    payments.updated_at as updated_at
from {{ ref('stg_payments') }} as payments
inner join {{ ref('stg_currencies') }} as currencies on currencies.currency = payments.currency
left join charge_txn on charge_txn.payment_id = payments.payment_id
left join disputed on disputed.payment_id = payments.payment_id
left join {{ ref('stg_customers') }} as customers on customers.customer_id = payments.customer_id
