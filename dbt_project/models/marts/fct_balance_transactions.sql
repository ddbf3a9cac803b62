{#
  One row per balance transaction, denormalized with what reports print next to it (charge,
  customer, card, dispute).

  Incremental (delete+insert on balance_transaction_id): a row is re-derived when the transaction
  OR any row joined onto it (its payment, the payment's customer, its refund or dispute) changed
  since the last build. `inputs_updated_at` records the newest updated_at of all of them, so
  "since the last build" is max(inputs_updated_at) in the table minus `fct_lookback_hours` (rows
  whose source transaction committed late with an older updated_at). A customer's new email
  therefore reaches every one of that customer's transactions, whatever their age.

  Partitioned runs (vars min_day/max_day, see macros/conventions.sql) also re-derive every row
  created in the window; with catch_up=false they re-derive that window only.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='balance_transaction_id',
    engine='MergeTree()',
    order_by='(account_id, created_at, balance_transaction_id)',
    partition_by='toYYYYMM(created_at)',
) }}

{% set window = partition_window() %}
{% set catch_up = window is none or window.catch_up %}

with
{% if is_incremental() %}
since as (
    select max(inputs_updated_at) - toIntervalHour({{ var('fct_lookback_hours') }}) as mark
    from {{ this }}
),

changed_payments as (
    select payment_id from {{ ref('stg_payments') }}
    where updated_at >= (select mark from since)
       or customer_id in (select customer_id from {{ ref('stg_customers') }}
                          where updated_at >= (select mark from since))
),

changed_sources as (
    select refund_id as source_id from {{ ref('stg_refunds') }} where updated_at >= (select mark from since)
    union all
    select dispute_id as source_id from {{ ref('stg_disputes') }} where updated_at >= (select mark from since)
    union all
    select payment_id as source_id from changed_payments
),

changed_ids as (
    -- transactions already built whose charge (the refunded/disputed payment too) changed
    select balance_transaction_id from {{ this }}
    where charge_id in (select payment_id from changed_payments)
),
{% endif %}

txn as (
    select *
    from {{ ref('stg_balance_transactions') }}
    {% if is_incremental() %}
    where
        {% if catch_up %}
        updated_at >= (select mark from since)
        or source_id in (select source_id from changed_sources)
        or balance_transaction_id in (select balance_transaction_id from changed_ids)
        {% if window %} or {% endif %}
        {% endif %}
        {% if window %}{{ in_window('created_at', window) }}{% endif %}
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
        refunds.updated_at as refund_updated_at,
        disputes.dispute_id as dispute_id,
        disputes.reason as dispute_reason,
        disputes.status as dispute_status,
        disputes.updated_at as dispute_updated_at,
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
    nullIf(linked.dispute_status, '') as dispute_status,
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
    linked.updated_at as updated_at,
    greatest(linked.updated_at, linked.refund_updated_at, linked.dispute_updated_at,
             payments.updated_at, customers.updated_at) as inputs_updated_at,
    now64(6, 'UTC') as mart_loaded_at
from linked
inner join {{ ref('stg_currencies') }} as currencies on currencies.currency = linked.currency
left join {{ ref('stg_payments') }} as payments on payments.payment_id = linked.charge_id
left join {{ ref('stg_customers') }} as customers on customers.customer_id = payments.customer_id
