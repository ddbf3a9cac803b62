import pytest

from exports.errors import InvalidParameter
from exports.reports.catalog import REPORT_TYPES, describe, get_report_type
from exports.reports.types.base import FILTERS

ISSUE_IDS = {
    "balance.summary", "balance_change_from_activity.itemized", "payments.itemized", "payouts.itemized",
    "payouts.summary", "payout_reconciliation.itemized", "fees.summary", "revenue.summary",
    "balance_change_from_activity.summary", "ending_balance_reconciliation.summary",
}


def test_the_catalog_has_exactly_the_documented_types():
    assert set(REPORT_TYPES) == ISSUE_IDS


@pytest.mark.parametrize("report_id", sorted(ISSUE_IDS))
def test_each_type_is_well_formed(report_id):
    report = REPORT_TYPES[report_id]
    names = report.column_names
    assert len(names) == len(set(names))
    assert report.default_columns and set(report.default_columns) <= set(names)
    assert set(report.filters) <= set(FILTERS)
    assert not {"_currency", "_exponent"} & set(names)
    for spec in report.columns:
        if spec.kind == "money":
            assert spec.sql.startswith("toInt64("), spec.name  # minor units, typed
    if report.chart_label_column:
        assert {report.chart_label_column, report.chart_value_column} <= set(names)
    entry = describe(report)
    assert entry["default_columns"] == report.default_columns
    assert [c["name"] for c in entry["columns"]] == names


def _in_order(names, expected):
    """`expected` appear in `names` in this relative order."""
    positions = [names.index(n) for n in expected]
    return positions == sorted(positions)


def test_stripe_column_order_and_defaults():
    activity = REPORT_TYPES["balance_change_from_activity.itemized"]
    assert _in_order(activity.column_names, [
        "balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on", "currency",
        "gross", "fee", "net", "reporting_category", "source_id", "description", "automatic_payout_id",
        "automatic_payout_effective_at_utc", "automatic_payout_effective_at", "customer_id", "customer_email",
        "customer_name", "customer_description", "charge_id", "payment_intent_id", "charge_created_utc",
        "charge_created", "payment_method_type", "card_brand", "card_funding", "card_country",
        "statement_descriptor", "dispute_reason"])
    assert activity.default_columns == ["balance_transaction_id", "created", "available_on", "currency",
                                        "gross", "fee", "net", "reporting_category", "description"]
    assert REPORT_TYPES["balance.summary"].column_names == ["category", "description", "net_amount", "currency"]
    for summary in ("balance_change_from_activity.summary", "payouts.summary",
                    "ending_balance_reconciliation.summary"):
        assert REPORT_TYPES[summary].column_names == ["reporting_category", "currency", "count", "gross",
                                                      "fee", "net"]
    payouts = REPORT_TYPES["payouts.itemized"]
    assert payouts.default_columns == ["payout_id", "effective_at", "currency", "gross", "fee", "net",
                                       "reporting_category", "balance_transaction_id", "description",
                                       "payout_expected_arrival_date", "payout_status"]
    recon = REPORT_TYPES["payout_reconciliation.itemized"]
    assert recon.default_columns == ["automatic_payout_id", "automatic_payout_effective_at",
                                     "balance_transaction_id", "created", "available_on", "currency",
                                     "gross", "fee", "net", "reporting_category", "description"]
    assert REPORT_TYPES["ending_balance_reconciliation.summary"].interval == "end_only"
    assert REPORT_TYPES["payout_reconciliation.itemized"].interval == "required_unless_payout"


def test_stripe_versioned_ids_are_accepted():
    assert get_report_type("balance.summary.1").id == "balance.summary"
    assert get_report_type("balance_change_from_activity.itemized.3").id == \
        "balance_change_from_activity.itemized"


@pytest.mark.parametrize("bad", ["", "balance", "payments", "balance.summary.x", None])
def test_unknown_type_names_the_param_and_lists_types(bad):
    with pytest.raises(InvalidParameter) as err:
        get_report_type(bad)
    assert err.value.param == "report_type"
    if bad:
        assert "balance.summary" in err.value.message
