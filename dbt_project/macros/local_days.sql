{#
  Helpers of balance_transactions_local_1d (per account-local day).

  ClickHouse takes a timezone only as a constant (toDate(t, 'Asia/Kolkata')), so the model has
  one branch per timezone in use: `account_timezones()` reads them from dim_accounts when the
  model runs (a placeholder while dbt only parses). Names that are not plain IANA names are
  skipped: those accounts have no local-day rows and their reports read the 15-minute grain.
#}
{% macro account_timezones() -%}
  {%- if not execute -%}
    {{ return(['UTC']) }}
  {%- endif -%}
  {%- set rows = run_query("select distinct timezone from " ~ ref('dim_accounts') ~ " order by timezone") -%}
  {%- set names = [] -%}
  {%- for row in rows -%}
    {%- if row[0] and modules.re.fullmatch('[A-Za-z][A-Za-z0-9_+/-]*', row[0]) -%}
      {%- do names.append(row[0]) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(names or ['UTC']) }}
{%- endmacro %}

{#
  pre_hook: an account whose timezone changed loses all its local-day rows before the run, and
  the run rebuilds every day of an account it holds no rows of, so each account's rows are cut
  in one timezone: its current one. (Reports also check the timezone the rows were cut in, see
  exports/reports/types/buckets.py, so a report between the two statements reads the 15-minute
  grain instead.)
#}
{% macro delete_accounts_whose_timezone_changed() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where account_id in (
        select held.account_id
        from (select account_id, any(timezone) as timezone from {{ this }} group by account_id) as held
        inner join {{ ref('dim_accounts') }} as accounts on accounts.account_id = held.account_id
        where accounts.timezone != held.timezone)
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}
