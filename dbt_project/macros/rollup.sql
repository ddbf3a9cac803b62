{#
  The (account_id, day) groups a rollup of balance_transactions_15m must recompute: days whose
  15-minute rows were rewritten since the rollup's last build (and, in a partitioned run, the
  window's days). Used with delete+insert on (account_id, day).
#}
{% macro changed_15m_days(rollup) -%}
  {%- set window = partition_window() -%}
  {%- set catch_up = window is none or window.catch_up -%}
    select distinct account_id, day
    from {{ ref('balance_transactions_15m') }}
    where
        {% if catch_up %}
        fact_loaded_at > (select max(fact_loaded_at) from {{ rollup }})
        {% if window %} or {% endif %}
        {% endif %}
        {% if window %}{{ in_window('day', window) }}{% endif %}
{%- endmacro %}
