"""Validation of report requests: every bad input names the right param."""

from datetime import datetime, timedelta, timezone

import pytest

from exports.errors import InvalidParameter
from exports.reports.engine import validate_report_request
from exports.settings import Settings

UTC = timezone.utc
NOW = datetime(2024, 11, 13, 10, 0, tzinfo=UTC)
SETTINGS = Settings(max_report_span_days=366)


def validate(parameters, report_type="balance_change_from_activity.itemized", fmt="csv", **kwargs):
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("data_available_end", None)
    return validate_report_request("acct_1", report_type, parameters, fmt, settings=SETTINGS, **kwargs)


def error(parameters, **kwargs) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as err:
        validate(parameters, **kwargs)
    assert err.value.message
    return err.value


OCT = {"interval_start": "2024-10-01", "interval_end": "2024-11-01"}


def test_dates_are_local_midnights_in_the_timezone():
    v = validate({**OCT, "timezone": "Europe/Berlin"})
    assert v.interval_start == datetime(2024, 9, 30, 22, tzinfo=UTC)
    assert v.interval_end == datetime(2024, 10, 31, 23, tzinfo=UTC)  # CET after the change
    assert v.timezone == "Europe/Berlin" and v.timezone_source == "parameter"


def test_account_timezone_is_the_default_then_utc():
    assert validate(OCT, account_timezone="Asia/Tokyo").interval_start == datetime(2024, 9, 30, 15, tzinfo=UTC)
    v = validate(OCT)
    assert (v.timezone, v.timezone_source) == ("UTC", "default")
    assert v.interval_start == datetime(2024, 10, 1, tzinfo=UTC)


def test_unix_seconds_naive_and_aware_datetimes():
    v = validate({"interval_start": 1727740800, "interval_end": "1730419200", "timezone": "Asia/Tokyo"})
    assert (v.interval_start, v.interval_end) == (datetime(2024, 10, 1, tzinfo=UTC), datetime(2024, 11, 1, tzinfo=UTC))
    v = validate({"interval_start": "2024-10-01T06:00:00", "interval_end": "2024-10-02T00:00:00+00:00",
                  "timezone": "America/New_York"})
    assert v.interval_start == datetime(2024, 10, 1, 10, tzinfo=UTC)  # naive = New York wall time
    assert v.interval_end == datetime(2024, 10, 2, tzinfo=UTC)  # aware kept
    assert validate({"interval_start": "2024-10-01T00:00:00Z", "interval_end": "2024-10-02"}).interval_start == \
        datetime(2024, 10, 1, tzinfo=UTC)


def test_defaults_and_chosen_columns_in_given_order():
    assert validate(OCT).columns[:3] == ["balance_transaction_id", "created_utc", "available_on_utc"]
    assert validate({**OCT, "columns": ["net", "created_utc"]}).columns == ["net", "created_utc"]
    assert validate({**OCT, "columns": "net, gross"}).columns == ["net", "gross"]


def test_filters_are_normalised_and_nested_filters_accepted():
    v = validate({**OCT, "currency": "USD", "reporting_category": ["charge", "refund"]})
    assert v.filters == {"currency": "usd", "reporting_category": ["charge", "refund"]}
    v = validate({**OCT, "filters": {"status": ["succeeded"], "customer": "cus_1"}}, report_type="payments.itemized")
    assert v.filters == {"status": ["succeeded"], "customer": "cus_1"}


def test_relative_range_resolves_in_the_timezone():
    v = validate({"relative_range": "last_month", "timezone": "Asia/Tokyo"})
    assert v.interval_start == datetime(2024, 9, 30, 15, tzinfo=UTC)
    assert v.relative_range == "last_month"
    assert validate({"relative_date_range": "yesterday"}).interval_start == datetime(2024, 11, 12, tzinfo=UTC)
    normalized = validate({"relative_range": "last_week"}).normalized_parameters()
    again = validate({k: v for k, v in normalized.items() if k != "resolved_from"})
    assert (again.interval_start, again.interval_end) == (datetime(2024, 11, 4, tzinfo=UTC),
                                                         datetime(2024, 11, 11, tzinfo=UTC))


def test_end_only_and_payout_by_id():
    v = validate({"interval_end": "2024-11-01"}, report_type="ending_balance_reconciliation.summary")
    assert v.interval_start is None and v.interval_end == datetime(2024, 11, 1, tzinfo=UTC)
    v = validate({"payout": "po_123"}, report_type="payout_reconciliation.itemized")
    assert v.interval_start is None and v.filters == {"payout": "po_123"}


@pytest.mark.parametrize("parameters, kwargs, param, words", [
    ({"interval_end": "2024-11-01"}, {}, "parameters.interval_start", "required"),
    ({"interval_start": "2024-10-01"}, {}, "parameters.interval_end", "required"),
    ({"interval_start": "2024-11-01", "interval_end": "2024-10-01"}, {}, "parameters.interval_end", "after"),
    ({"interval_start": "2024-10-01", "interval_end": "2024-10-01"}, {}, "parameters.interval_end", "after"),
    ({"interval_start": "2024-13-01", "interval_end": "2024-11-01"}, {}, "parameters.interval_start", "YYYY-MM-DD"),
    ({"interval_start": "yesterday", "interval_end": "2024-11-01"}, {}, "parameters.interval_start", "date"),
    ({"interval_start": True, "interval_end": "2024-11-01"}, {}, "parameters.interval_start", "Unix"),
    ({"interval_start": "2024-10-01", "interval_end": "2024-12-01"}, {}, "parameters.interval_end", "future"),
    ({"interval_start": "2023-01-01", "interval_end": "2024-11-01"}, {}, "parameters.interval_start", "366"),
    ({**OCT, "timezone": "Mars/Olympus"}, {}, "parameters.timezone", "IANA"),
    ({**OCT, "timezone": "+02:00"}, {}, "parameters.timezone", "IANA"),
    ({**OCT, "currency": "usd' OR 1=1 --"}, {}, "parameters.currency", "currency"),
    ({**OCT, "currency": "xyz"}, {}, "parameters.currency", "currency"),
    ({**OCT, "currency": 840}, {}, "parameters.currency", "currency"),
    ({**OCT, "reporting_category": "gift"}, {}, "parameters.reporting_category", "charge"),
    ({**OCT, "status": "succeeded"}, {}, "parameters.status", "cannot be filtered by status"),
    ({**OCT, "payout": "po_1"}, {}, "parameters.payout", "cannot be filtered by payout"),
    ({**OCT, "customer": "cus_1"}, {}, "parameters.customer", "cannot be filtered"),
    ({**OCT, "colour": "red"}, {}, "parameters.colour", "Unknown parameter"),
    ({**OCT, "columns": ["net", "profit"]}, {}, "parameters.columns", "balance_transaction_id"),
    ({**OCT, "columns": []}, {}, "parameters.columns", "non-empty"),
    ({**OCT, "columns": ["net", "net"]}, {}, "parameters.columns", "more than once"),
    ({**OCT, "columns": ["_currency"]}, {}, "parameters.columns", "Available columns"),
    ({"relative_range": "last_fortnight"}, {}, "parameters.relative_range", "last_month"),
    ({"relative_range": "last_month", "interval_start": "2024-10-01"}, {}, "parameters.interval_start", "not both"),
    ({"relative_range": "month_to_date"}, {"now": datetime(2024, 11, 1, 5, tzinfo=UTC)},
     "parameters.relative_range", "no complete day"),
    ({"relative_range": "last_month"}, {"data_available_end": datetime(2024, 10, 20, tzinfo=UTC)},
     "parameters.relative_range", "available up to"),
    (OCT, {"data_available_end": datetime(2024, 10, 31, tzinfo=UTC)}, "parameters.interval_end", "available up to"),
    (OCT, {"fmt": "docx"}, "format", "csv"),
    (OCT, {"report_type": "payments.summary"}, "report_type", "payments.itemized"),
    ("not a dict", {}, "parameters", "object"),
    ({**OCT, "filters": ["usd"]}, {}, "parameters.filters", "object"),
    ({**OCT, "currency": "usd", "filters": {"currency": "eur"}}, {}, "parameters.currency", "twice"),
    ({"interval_start": "2024-10-01", "interval_end": "2024-11-01"},
     {"report_type": "ending_balance_reconciliation.summary"}, "parameters.interval_start", "interval_end only"),
    ({"payout": "po_1' OR '1'='1"}, {"report_type": "payout_reconciliation.itemized"}, "parameters.payout", "po_"),
    ({"customer": "acct_1"}, {"report_type": "payments.itemized", **{}}, "parameters.customer", "cus_"),
    ({**OCT, "status": "lost"}, {"report_type": "payments.itemized"}, "parameters.status", "succeeded"),
    ({}, {"report_type": "payout_reconciliation.itemized"}, "parameters.interval_start", "required"),
])
def test_bad_input_names_the_param(parameters, kwargs, param, words):
    err = error(parameters, **kwargs)
    assert err.param == param, err.message
    assert words.lower() in err.message.lower()


def test_span_limit_comes_from_settings():
    with pytest.raises(InvalidParameter) as err:
        validate_report_request("acct_1", "balance.summary", OCT, "pdf", settings=Settings(max_report_span_days=7),
                                now=NOW, data_available_end=None)
    assert err.value.param == "parameters.interval_start" and "at most 7 days" in err.value.message
    # Exactly at the limit is fine: a 366-day leap year.
    v = validate({"interval_start": "2024-01-01", "interval_end": "2024-11-13"})
    assert v.interval_end - v.interval_start < timedelta(days=366)


def test_interval_end_at_data_available_end_is_allowed():
    v = validate(OCT, data_available_end=datetime(2024, 11, 1, tzinfo=UTC))
    assert v.interval_end == datetime(2024, 11, 1, tzinfo=UTC)


def test_format_is_case_insensitive_and_error_dict_is_stripe_shaped():
    assert validate(OCT, fmt="PARQUET").format == "parquet"
    err = error(OCT, fmt="txt")
    assert err.to_dict()["error"]["param"] == "format"


@pytest.mark.parametrize(("parameters", "param"), [
    # Years 1 and 9999 overflow datetime when shifted into or out of a timezone.
    ({"interval_start": "0001-01-01", "interval_end": "0001-01-02", "timezone": "Pacific/Kiritimati"},
     "parameters.interval_start"),
    ({"interval_start": "0001-01-01T00:00:00", "interval_end": "0001-01-02", "timezone": "Asia/Tokyo"},
     "parameters.interval_start"),
    ({"interval_start": "0001-01-01T00:00:00+14:00", "interval_end": "2024-11-01"}, "parameters.interval_start"),
    ({"interval_start": "2024-10-01", "interval_end": "9999-12-31", "timezone": "Pacific/Pago_Pago"},
     "parameters.interval_end"),
    ({"interval_start": "2024-10-01", "interval_end": "9999-12-31T23:00:00-12:00"}, "parameters.interval_end"),
    ({"interval_start": "2024-10-01", "interval_end": 253402300800}, "parameters.interval_end"),
    ({"interval_start": float("nan"), "interval_end": "2024-11-01"}, "parameters.interval_start"),
    ({"interval_start": float("-inf"), "interval_end": "2024-11-01"}, "parameters.interval_start"),
    ({"interval_start": -(10 ** 12), "interval_end": "2024-11-01"}, "parameters.interval_start"),
])
def test_instants_outside_the_supported_years_are_invalid_not_overflows(parameters, param):
    assert error(parameters).param == param


@pytest.mark.parametrize("timezone", ["America", "Europe/", "Europe//Berlin", "A" * 5000, "../etc/passwd", ""])
def test_timezones_that_are_directories_paths_or_too_long_are_invalid(timezone):
    err = error({**OCT, "timezone": timezone})
    assert err.param == "parameters.timezone" and len(err.message) < 300


def test_unknown_parameters_are_invalid_even_when_null():
    assert error({**OCT, "surprise": None}).param == "parameters.surprise"
    assert error({**OCT, "filters": {"surprise": None}}).param == "parameters.surprise"
    # A null for a known parameter is the same as leaving it out.
    assert validate({**OCT, "currency": None, "timezone": None}).timezone == "UTC"


@pytest.mark.timeout(10)
def test_a_column_listed_100k_times_is_rejected_in_linear_time():
    err = error({**OCT, "columns": ["balance_transaction_id"] * 100_000})
    assert err.param == "parameters.columns" and "more than once" in err.message


def test_messages_show_at_most_a_short_excerpt_of_the_input():
    huge = "x" * 1_000_000
    for parameters in ({**OCT, "timezone": huge}, {**OCT, "currency": huge}, {**OCT, huge: 1},
                       {"interval_start": huge, "interval_end": "2024-11-01"}, {**OCT, "columns": [huge]}):
        assert len(error(parameters).message) < 1000


def test_file_options_are_validated_for_their_format_and_kept_on_revalidation():
    v = validate({**OCT, "csv_bom": True, "timestamp_format": "iso8601"})
    assert (v.csv_bom, v.timestamp_format) == (True, "iso8601")
    assert v.options == {"csv_bom": True, "timestamp_format": "iso8601"}
    again = validate(v.normalized_parameters())
    assert again.options == v.options
    pdf = validate({**OCT, "locale": "fr-CH"}, report_type="balance.summary", fmt="pdf")
    assert pdf.locale == "fr_CH" and pdf.options == {"locale": "fr_CH"}
    assert validate(OCT, fmt="xlsx", report_type="balance.summary").options == {}
    assert error({**OCT, "locale": "de_DE"}).param == "parameters.locale"
    assert error({**OCT, "csv_bom": 1}).param == "parameters.csv_bom"
    assert "CSV files only" in error({**OCT, "timestamp_format": "iso8601"}, fmt="parquet").message
    assert error({**OCT, "locale": "x" * 40}, fmt="pdf", report_type="balance.summary").param == \
        "parameters.locale"
