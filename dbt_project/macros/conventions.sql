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

{#
  The day window of a partitioned run (Dagster passes vars min_day/max_day from the partition
  window, max exclusive), or none for an ordinary run. `catch_up` (default true) says whether the
  run also applies every change that arrived since the last build: the newest partition does,
  an older day rebuilt on its own (a backfill) rebuilds that day only.
#}
{% macro partition_window() -%}
  {%- if var('min_day', none) and var('max_day', none) -%}
    {{ return({'min_day': var('min_day'), 'max_day': var('max_day'),
               'catch_up': var('catch_up', true)}) }}
  {%- else -%}
    {{ return(none) }}
  {%- endif -%}
{%- endmacro %}

{% macro in_window(column, window) -%}
({{ column }} >= toDateTime64('{{ window.min_day }}', 6, 'UTC') and {{ column }} < toDateTime64('{{ window.max_day }}', 6, 'UTC'))
{%- endmacro %}

{#
  Start of the 15-minute UTC bucket of a timestamp. Every UTC offset in use is a multiple of
  15 minutes (+5:30 Kolkata, +5:45 Kathmandu, DST shifts), so a bucket never straddles a local
  midnight and local-day sums are exact sums of buckets.
#}
{% macro bucket_15m(column) -%}
toDateTime(toStartOfFifteenMinutes({{ column }}), 'UTC')
{%- endmacro %}
