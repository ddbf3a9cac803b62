"""Pure pieces of the web app: schedules in words, charts, restricted-key scopes, safe redirects."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from api.auth import ApiKey, required_scope, validate_scopes
from api.web.charts import bar_chart
from api.web.cron_text import describe
from exports.errors import InvalidParameter


@pytest.mark.parametrize("cron, text", [
    ("0 6 1 * *", "every month on the 1st at 06:00 Europe/Berlin"),
    ("0 6 2,16 * *", "every month on the 2nd and 16th at 06:00 Europe/Berlin"),
    ("30 7 * * 1-5", "every weekday (Monday to Friday) at 07:30 Europe/Berlin"),
    ("0 6 * * MON", "every Monday at 06:00 Europe/Berlin"),
    ("0 6 * * 1,3", "every Monday and Wednesday at 06:00 Europe/Berlin"),
    ("5 0 * * *", "every day at 00:05 Europe/Berlin"),
    ("0 6 1 1,4,7,10 *", "every quarter on the 1st (January, April, July, October) at 06:00 Europe/Berlin"),
    ("0 9 31 12 *", "every year on December 31 at 09:00 Europe/Berlin"),
    ("@monthly", "every month on the 1st at 00:00 Europe/Berlin"),
    ("15 * * * *", "every hour at minute 15 (Europe/Berlin)"),
])
def test_schedules_read_as_people_say_them(cron, text):
    assert describe(cron, "Europe/Berlin") == text


def test_unusual_schedules_fall_back_to_cron_descriptor_with_the_timezone():
    text = describe("*/15 9-17 * * 1-5", "UTC")
    assert text.startswith("every 15 minutes") and "17:59" in text and text.endswith("(UTC)")


def test_chart_draws_negative_bars_left_of_the_zero_line():
    html = bar_chart("Net by category, USD", [("activity", Decimal("100.00"), "100.00"),
                                               ("payouts", Decimal("-50.00"), "-50.00")])
    assert html.count("<svg") == 2 and 'class="bar neg"' in html and 'class="bar pos"' in html
    # zero line at a third of the width: the range is -50..100
    assert 'x1="33.33"' in html and "payouts: -50.00" in html
    assert bar_chart("empty", []) == ""


def _request(path: str, method: str = "GET"):
    return SimpleNamespace(scope={"route": SimpleNamespace(path=path)}, method=method,
                           url=SimpleNamespace(path=path))


@pytest.mark.parametrize("path, method, scope", [
    ("/v1/reports", "GET", "reports:read"),
    ("/v1/reports", "POST", "reports:write"),
    ("/v1/reports/{report_id}/cancel", "POST", "reports:write"),
    ("/v1/reports/{report_id}/deliveries", "GET", "reports:read"),
    ("/v1/report_types", "GET", "reports:read"),
    ("/v1/report_templates/{template_id}", "PATCH", "templates:write"),
    ("/v1/report_templates", "GET", "templates:read"),
    ("/v1/notifications/{notification_id}/read", "POST", "notifications:write"),
    ("/v1/webhook_secret", "GET", "webhooks:read"),
    ("/v1/webhook_secret/rotate", "POST", "webhooks:write"),
    ("/v1/embed_sessions", "POST", "embed:write"),
    ("/v1/something_new", "GET", None),
])
def test_every_route_maps_to_a_scope(path, method, scope):
    assert required_scope(_request(path, method)) == scope


def test_restricted_keys_allow_only_their_scopes():
    standard = ApiKey("key_1", "acct_1", None)
    restricted = ApiKey("key_2", "acct_1", ("reports:read", "templates:write"))
    assert standard.allows("reports:write") and standard.allows(None)
    assert restricted.allows("reports:read") and not restricted.allows("reports:write")
    assert restricted.allows("templates:read")  # write includes read
    assert not restricted.allows(None)  # a route under no known resource: standard keys only


def test_scopes_are_validated():
    assert validate_scopes(["reports:write", "reports:read", "reports:read"]) == ["reports:read", "reports:write"]
    with pytest.raises(InvalidParameter, match="Unknown scope 'reports:delete'"):
        validate_scopes(["reports:delete"])
    with pytest.raises(InvalidParameter, match="at least one scope"):
        validate_scopes([])


@pytest.mark.parametrize("target, safe", [
    ("/reports/rpt_1", "/reports/rpt_1"), ("https://evil.example/", "/reports"),
    ("//evil.example/x", "/reports"), ("/\\evil.example", "/reports"),
])
def test_sign_in_only_redirects_within_the_app(target, safe):
    from api.web.pages import _safe_next

    assert _safe_next(target) == safe


def test_the_forms_inclusive_end_date_becomes_the_engines_exclusive_end():
    from api.web.pages import _check_custom_dates, _exclusive_end

    assert _exclusive_end("2026-10-31") == "2026-11-01"
    with pytest.raises(InvalidParameter, match="before the first day") as error:
        _check_custom_dates({"period": "custom", "interval_start": "2026-10-31", "interval_end": "2026-10-01"})
    assert error.value.param == "parameters.interval_end"
