-- Per account, day and currency, the summary's totals equal the fact's.
with fact as (
    select account_id, {{ utc_day('created_at') }} as day, currency,
           count() as transaction_count, sum(gross_minor) as gross_minor,
           sum(fee_minor) as fee_minor, sum(net_minor) as net_minor
    from {{ ref('fct_balance_transactions') }}
    group by account_id, day, currency
),
summary as (
    select account_id, day, currency,
           sum(transaction_count) as transaction_count, sum(gross_minor) as gross_minor,
           sum(fee_minor) as fee_minor, sum(net_minor) as net_minor
    from {{ ref('daily_balance_summary') }}
    group by account_id, day, currency
)
select fact.*, summary.transaction_count as summary_count, summary.net_minor as summary_net_minor
from fact
full outer join summary using (account_id, day, currency)
where fact.transaction_count != summary.transaction_count
   or fact.gross_minor != summary.gross_minor
   or fact.fee_minor != summary.fee_minor
   or fact.net_minor != summary.net_minor
