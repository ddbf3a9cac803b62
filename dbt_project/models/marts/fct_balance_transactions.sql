{#
  One row per balance transaction, denormalized with what reports print next to it (charge,
  customer, card, dispute). Incremental: each run re-derives the rows updated since
  max(updated_at) in the table minus `fct_lookback_hours`, deleting their old versions first
  (delete+insert on balance_transaction_id, lightweight deletes), so settling a transaction into
  a payout (which bumps its updated_at) replaces the row.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='balance_transaction_id',
    engine='MergeTree()',
    order_by='(account_id, created_at, balance_transaction_id)',
    partition_by='toYYYYMM(created_at)',
) }}

with txn as (
    select *
    from {{ ref('stg_balance_transactions') }}
    {% if is_incremental() %}
    where updated_at >= (
        select max(updated_at) - toIntervalHour({{ var('fct_lookback_hours') }}) from {{ this }}
    )
    {% endif %}
),

linked as (
    select
        txn.balance_transaction_id as balance_transaction_id,
        txn.account_id as account_id,
        txn.gross_minor as gross_minor,
        txn.fee_minor as fee_minor,
        txn.net_minor as net_minor,
        txn.currency as currency,
        txn.type as type,
        txn.reporting_category as reporting_category,
        txn.source_id as source_id,
        txn.description as description,
        txn.status as status,
        txn.payout_id as payout_id,
        txn.available_on as available_on,
        txn.created_at as created_at,
        txn.updated_at as updated_at,
        refunds.refund_id as refund_id,
        refunds.amount_minor as refund_amount_minor,
        refunds.currency as refund_currency,
        disputes.dispute_id as dispute_id,
        disputes.reason as dispute_reason,
        multiIf(
            startsWith(txn.source_id, 'ch_') or startsWith(txn.source_id, 'py_'), txn.source_id,
            refunds.refund_id != '', refunds.payment_id,
            disputes.dispute_id != '', disputes.payment_id,
            ''
        ) as charge_id
    from txn
    left join {{ ref('stg_refunds') }} as refunds on refunds.refund_id = txn.source_id
    left join {{ ref('stg_disputes') }} as disputes on disputes.dispute_id = txn.source_id
)

select
    linked.balance_transaction_id as balance_transaction_id,
    linked.account_id as account_id,
    linked.created_at as created_at,
    linked.available_on as available_on,
    linked.currency as currency,
    currencies.currency_exponent as currency_exponent,
    linked.gross_minor as gross_minor,
    linked.fee_minor as fee_minor,
    linked.net_minor as net_minor,
    linked.type as type,
    linked.reporting_category as reporting_category,
    linked.source_id as source_id,
    linked.description as description,
    linked.status as status,
    linked.payout_id as automatic_payout_id,
    nullIf(linked.charge_id, '') as charge_id,
    payments.payment_intent_id as payment_intent_id,
    nullIf(linked.refund_id, '') as refund_id,
    nullIf(linked.dispute_id, '') as dispute_id,
    payments.customer_id as customer_id,
    customers.customer_email as customer_email,
    customers.customer_name as customer_name,
    customers.customer_description as customer_description,
    if(payments.payment_id = '', null, payments.created_at) as charge_created_at,
    nullIf(payments.payment_method_type, '') as payment_method_type,
    payments.card_brand as card_brand,
    payments.card_funding as card_funding,
    payments.card_country as card_country,
    payments.statement_descriptor as statement_descriptor,
    nullIf(linked.dispute_reason, '') as dispute_reason,
    nullIf(payments.payment_metadata, '') as payment_metadata,
    payments.invoice_id as invoice_id,
    -- Stripe's customer_facing_*: the charge's or refund's own amount, for their transactions.
    multiIf(
        linked.refund_id != '', toNullable({{ minor('linked.refund_amount_minor') }}),
        linked.source_id = linked.charge_id and payments.payment_id != '', toNullable({{ minor('payments.amount_minor') }}),
        null
    ) as customer_facing_amount_minor,
    multiIf(
        linked.refund_id != '', toNullable(linked.refund_currency),
        linked.source_id = linked.charge_id and payments.payment_id != '', toNullable(payments.currency),
        null
    ) as customer_facing_currency,
    linked.updated_at as updated_at
from linked
inner join {{ ref('stg_currencies') }} as currencies on currencies.currency = linked.currency
left join {{ ref('stg_payments') }} as payments on payments.payment_id = linked.charge_id
left join {{ ref('stg_customers') }} as customers on customers.customer_id = payments.customer_id
