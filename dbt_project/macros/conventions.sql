{# Money and time conventions of the marts (docs/warehouse-contract.md). #}

{# Money stays integer minor units: Int64, never Float/Decimal. #}
{% macro minor(column) -%}
toInt64({{ column }})
{%- endmacro %}

{# Timestamps are DateTime64(6, 'UTC'); days are UTC dates. #}
{% macro utc_ts(column) -%}
toDateTime64({{ column }}, 6, 'UTC')
{%- endmacro %}

{% macro utc_day(column) -%}
toDate({{ column }}, 'UTC')
{%- endmacro %}

{# The latest version of each raw row (raw tables are ReplacingMergeTree(updated_at)). #}
{% macro latest(source_name, table_name) -%}
{{ source(source_name, table_name) }} FINAL
{%- endmacro %}
