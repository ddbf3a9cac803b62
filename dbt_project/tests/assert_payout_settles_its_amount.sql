-- A payout pays out exactly the nets of the transactions it settles.
select payout_id, amount_minor, settled_net_minor, settled_count
from {{ ref('fct_payouts') }}
where settled_count > 0 and settled_net_minor != amount_minor
