"""What a finished report's notification (and email) calls it and the period it names."""

from exports.delivery import dispatch
from exports.delivery.email import report_period

MANIFEST = {"extra": {"interval_start": "2026-10-01T00:00:00+02:00",
                      "interval_end": "2026-11-01T00:00:00+01:00", "timezone": "Europe/Berlin"}}


def test_a_report_is_named_by_its_catalog_title_or_its_schedule():
    assert dispatch.report_name({"report_type": "balance.summary"}) == "Balance summary"
    assert (dispatch.report_name({"report_type": "balance_change_from_activity.itemized"})
            == "Balance change from activity (itemized)")
    assert dispatch.report_name({"report_type": "balance.summary", "template_name": "Month end"}) == "Month end"
    assert dispatch.report_name({"report_type": "retired.type"}) == "retired.type"


def test_the_notification_names_the_resolved_period_not_the_relative_range():
    report = {"report_type": "fees.summary", "format": "csv", "row_count": 12345, "manifest": MANIFEST,
              "parameters": {"relative_range": "last_month", "timezone": "Europe/Berlin"}}
    text = dispatch._notification_text(report, "report.succeeded")
    assert text == {"title": "Report ready: Fees summary",
                    "body": "12,345 rows, CSV, 01 Oct 2026 – 31 Oct 2026 (Europe/Berlin)."}
    # Failed before the engine resolved it: the range as asked, not "all time".
    assert report_period({"parameters": {"relative_range": "last_month"}}) == "last month"
    failed = dispatch._notification_text({**report, "manifest": None, "error_message": "boom"}, "report.failed")
    assert failed == {"title": "Report failed: Fees summary", "body": "boom"}
