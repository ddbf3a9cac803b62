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

{#
  The config of a rollup of balance_transactions_15m to (account_id, UTC day): incremental,
  delete+insert per (account_id, day), monthly partitions. Only the sort key differs.
#}
{% macro daily_rollup_config(order_by) -%}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='account_id, day',
    engine='MergeTree()',
    order_by=order_by,
    partition_by='toYYYYMM(day)',
) }}
{%- endmacro %}

{# WHERE of a daily rollup's incremental run: only the days changed_15m_days lists. #}
{% macro where_changed_15m_days(account_id='account_id', day='day') -%}
{% if is_incremental() %}
where ({{ account_id }}, {{ day }}) in ({{ changed_15m_days(this) }})
{% endif %}
{%- endmacro %}
