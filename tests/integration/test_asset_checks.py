"""Asset checks pass on a good warehouse and fail, with the numbers, on a corrupted one."""

from __future__ import annotations

import pytest

from exports import replication
from exports.warehouse import open_warehouse
from orchestration.defs.platform.checks import daily_balance_summary_matches_fact, replication_checks
from orchestration.resources import WarehouseResource

pytestmark = pytest.mark.integration

SYNC = {"mutations_sync": 2}


def _replication_check(table: str):
    return replication_checks[replication.REPLICATED_TABLES.index(table)]


def test_replication_checks_pass_then_fail_on_corrupted_amount(demo_platform):
    warehouse = WarehouseResource()
    for table in replication.REPLICATED_TABLES:
        result = _replication_check(table)(warehouse=warehouse)
        assert result.passed, (table, result.description)
    with open_warehouse(demo_platform.settings) as client:
        payment_id = client.query("SELECT id FROM raw.payments FINAL ORDER BY id LIMIT 1").result_rows[0][0]
        client.command("ALTER TABLE raw.payments UPDATE amount = amount + 7 WHERE id = {id:String}",
                       parameters={"id": payment_id}, settings=SYNC)
    try:
        result = _replication_check("payments")(warehouse=warehouse)
        assert not result.passed
        meta = {k: v.value for k, v in result.metadata.items()}
        assert meta["warehouse_sum_amount"] - meta["source_sum_amount"] == 7
        assert meta["warehouse_row_count"] == meta["source_row_count"]
        assert f"sum_amount: source {meta['source_sum_amount']} != warehouse {meta['warehouse_sum_amount']}" \
            in result.description
    finally:
        with open_warehouse(demo_platform.settings) as client:
            client.command("ALTER TABLE raw.payments UPDATE amount = amount - 7 WHERE id = {id:String}",
                           parameters={"id": payment_id}, settings=SYNC)
    assert _replication_check("payments")(warehouse=warehouse).passed


def test_replication_check_fails_on_missing_rows(demo_platform):
    warehouse = WarehouseResource()
    with open_warehouse(demo_platform.settings) as client:
        rows = client.query("SELECT * FROM raw.refunds FINAL ORDER BY id LIMIT 2").result_rows
        columns = client.query("SELECT * FROM raw.refunds LIMIT 0").column_names
        client.command("ALTER TABLE raw.refunds DELETE WHERE id IN {ids:Array(String)}",
                       parameters={"ids": [r[0] for r in rows]}, settings=SYNC)
    try:
        result = _replication_check("refunds")(warehouse=warehouse)
        meta = {k: v.value for k, v in result.metadata.items()}
        assert not result.passed
        assert meta["source_row_count"] - meta["warehouse_row_count"] == 2
    finally:
        with open_warehouse(demo_platform.settings) as client:
            client.insert("raw.refunds", rows, column_names=list(columns))
    assert _replication_check("refunds")(warehouse=warehouse).passed


def test_daily_summary_check_fails_with_numbers_when_summary_disagrees(demo_platform):
    warehouse = WarehouseResource()
    assert daily_balance_summary_matches_fact(warehouse=warehouse).passed
    with open_warehouse(demo_platform.settings) as client:
        account, day, currency, _ = client.query(
            "SELECT account_id, day, currency, net_minor FROM analytics.daily_balance_summary "
            "WHERE reporting_category = 'charge' ORDER BY account_id, day LIMIT 1").result_rows[0]
        fact_net = int(client.query(
            "SELECT sum(net_minor) FROM analytics.fct_balance_transactions WHERE account_id = {a:String} "
            "AND toDate(created_at, 'UTC') = {d:Date} AND currency = {c:String}",
            parameters={"a": account, "d": day, "c": currency}).result_rows[0][0])
        client.command("ALTER TABLE analytics.daily_balance_summary UPDATE net_minor = net_minor + 100 "
                       "WHERE account_id = {a:String} AND day = {d:Date} AND currency = {c:String} "
                       "AND reporting_category = 'charge'",
                       parameters={"a": account, "d": day, "c": currency}, settings=SYNC)
    try:
        result = daily_balance_summary_matches_fact(warehouse=warehouse)
        assert not result.passed
        assert f"{account} {day} {currency}" in result.description
        assert f"net {fact_net}!={fact_net + 100}" in result.description
        assert not result.passed and result.metadata["mismatched_groups_shown"].value == 1
    finally:
        with open_warehouse(demo_platform.settings) as client:
            client.command("ALTER TABLE analytics.daily_balance_summary UPDATE net_minor = net_minor - 100 "
                           "WHERE account_id = {a:String} AND day = {d:Date} AND currency = {c:String} "
                           "AND reporting_category = 'charge'",
                           parameters={"a": account, "d": day, "c": currency}, settings=SYNC)
    assert daily_balance_summary_matches_fact(warehouse=warehouse).passed
