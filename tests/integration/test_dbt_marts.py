"""dbt marts on the demo platform: dbt's own tests pass, and mart totals reconcile with the source."""

from __future__ import annotations

import re

import pytest

from exports import db
from exports.warehouse import open_warehouse
from tests.fixtures.platform import run_dbt

pytestmark = pytest.mark.integration


def test_dbt_tests_pass_on_demo_platform(demo_platform):
    result = run_dbt(["test"], demo_platform.settings)
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(r"Done\. PASS=\d+ WARN=0 ERROR=0 SKIP=0", result.stdout), result.stdout[-2000:]
    # The invariants are real tests that ran, not skipped.
    for name in ("assert_fct_net_is_gross_minus_fee", "assert_payout_settles_its_amount",
                 "assert_daily_balance_summary_matches_fact"):
        assert name in result.stdout


def test_mart_totals_equal_source_per_currency(demo_platform):
    settings = demo_platform.settings
    with db.connect("source", settings) as conn:
        source = {row[0]: tuple(int(v) for v in row[1:]) for row in conn.execute(
            "SELECT currency, count(*), sum(amount), sum(fee), sum(net) FROM balance_transactions GROUP BY currency")}
        payments = {row[0]: tuple(int(v) for v in row[1:]) for row in conn.execute(
            "SELECT currency, count(*), sum(amount), sum(amount_refunded) FROM payments GROUP BY currency")}
        charges_with_customer = conn.execute(
            "SELECT count(*) FROM balance_transactions t JOIN payments p ON p.id = t.source_id "
            "WHERE t.reporting_category = 'charge' AND p.customer_id IS NOT NULL").fetchone()[0]
    with open_warehouse(settings) as client:
        fact = {row[0]: tuple(int(v) for v in row[1:]) for row in client.query(
            "SELECT currency, count(), sum(gross_minor), sum(fee_minor), sum(net_minor) "
            "FROM analytics.fct_balance_transactions GROUP BY currency").result_rows}
        summary = {row[0]: tuple(int(v) for v in row[1:]) for row in client.query(
            "SELECT currency, sum(transaction_count), sum(gross_minor), sum(fee_minor), sum(net_minor) "
            "FROM analytics.daily_balance_summary GROUP BY currency").result_rows}
        fct_payments = {row[0]: tuple(int(v) for v in row[1:]) for row in client.query(
            "SELECT currency, count(), sum(amount_minor), sum(amount_refunded_minor) "
            "FROM analytics.fct_payments GROUP BY currency").result_rows}
        exponents = dict(client.query(
            "SELECT DISTINCT currency, currency_exponent FROM analytics.fct_balance_transactions").result_rows)
        charge = client.query(
            "SELECT count(), countIf(charge_id = source_id), countIf(customer_id IS NOT NULL) "
            "FROM analytics.fct_balance_transactions WHERE reporting_category = 'charge'").result_rows[0]
        refund_links = client.query(
            "SELECT count(), countIf(charge_id IS NOT NULL AND refund_id = source_id) "
            "FROM analytics.fct_balance_transactions WHERE reporting_category = 'refund'").result_rows[0]
    assert len(source) >= 2, "the demo platform has several currencies"
    assert fact == source
    assert summary == source
    assert fct_payments == payments
    assert exponents["jpy" if "jpy" in exponents else next(iter(exponents))] in (0, 2, 3)
    assert all(exponents[c] == {"jpy": 0, "krw": 0, "kwd": 3, "bhd": 3}.get(c, 2) for c in exponents)
    assert charge[0] > 0 and charge[0] == charge[1]
    assert charge[2] == charges_with_customer > 0
    assert refund_links[0] > 0 and refund_links[0] == refund_links[1]


def test_incremental_fact_rebuild_replaces_rows_without_duplicates(demo_platform):
    settings = demo_platform.settings
    with open_warehouse(settings) as client:
        before = client.query("SELECT count(), sum(net_minor) FROM analytics.fct_balance_transactions").result_rows[0]
    result = run_dbt(["run", "--select", "fct_balance_transactions"], settings)
    assert result.returncode == 0, result.stdout[-4000:]
    with open_warehouse(settings) as client:
        after = client.query("SELECT count(), uniqExact(balance_transaction_id), sum(net_minor) "
                             "FROM analytics.fct_balance_transactions").result_rows[0]
    assert after[0] == after[1] == before[0]
    assert after[2] == before[1]


def test_every_model_seed_and_column_is_described(demo_platform, tmp_path):
    """Analysts read the dbt docs: every model and seed, and every column the warehouse really
    has, carries a description (the contract's wording, docs/warehouse-contract.md)."""
    import json

    result = run_dbt(["parse", "--target-path", str(tmp_path)], demo_platform.settings)
    assert result.returncode == 0, result.stdout[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")]
    assert len(nodes) >= 16
    with open_warehouse(demo_platform.settings) as client:
        for node in nodes:
            assert node["description"].strip(), node["name"]
            actual = [r[0] for r in client.query(
                "SELECT name FROM system.columns WHERE database = 'analytics' AND table = {t:String} "
                "ORDER BY position", parameters={"t": node["name"]}).result_rows]
            assert actual and list(node["columns"]) == actual, node["name"]
            missing = [c for c, spec in node["columns"].items() if not spec["description"].strip()]
            assert not missing, (node["name"], missing)


def test_dbt_unit_tests_cover_incremental_buckets_and_signs(demo_platform):
    result = run_dbt(["test", "--select", "test_type:unit"], demo_platform.settings)
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(r"Done\. PASS=3 WARN=0 ERROR=0", result.stdout), result.stdout[-2000:]
    for name in ("fct_rederives_old_rows_whose_customer_changed", "buckets_are_15_minute_utc_and_keep_signs",
                 "fee_types_and_signs_come_from_the_seed"):
        assert name in result.stdout


def test_dbt_docs_site_builds(demo_platform, tmp_path):
    """`payreports dbt docs` builds the site: index.html, manifest.json and a catalog.json that
    read the warehouse (column types of the built marts)."""
    import json

    from exports.cli.dbt import generate_docs

    files = generate_docs(tmp_path / "site")
    assert [f.name for f in files] == ["index.html", "manifest.json", "catalog.json"]
    assert (tmp_path / "site" / "index.html").stat().st_size > 10_000
    catalog = json.loads((tmp_path / "site" / "catalog.json").read_text())
    fact = catalog["nodes"]["model.payreports.fct_balance_transactions"]
    assert fact["columns"]["net_minor"]["type"] == "Int64"
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert manifest["nodes"]["model.payreports.balance_transactions_15m"]["columns"]["bucket_start"]["description"]
