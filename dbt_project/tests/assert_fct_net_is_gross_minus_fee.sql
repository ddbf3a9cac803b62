-- Every fact row: net = gross - fee, exactly (integer minor units).
select balance_transaction_id, gross_minor, fee_minor, net_minor
from {{ ref('fct_balance_transactions') }}
where net_minor != gross_minor - fee_minor
