"""The web app's forms with bad input answer 4xx naming the field (never a 5xx), refuse forms
without the session's CSRF token, and set secure cookies in production. In-process (TestClient)
against the session's Postgres: no warehouse needed."""

import re
import secrets

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from exports import users

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


def _sign_in(client: TestClient, email: str) -> str:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf,
                                           "next": "/reports"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["set-cookie"]


@pytest.fixture
def admin(postgres):
    email = f"admin{secrets.token_hex(4)}@example.com"
    users.create_user("acct_forms_" + secrets.token_hex(3), email, "admin", PASSWORD, settings=postgres)
    with TestClient(create_app(postgres)) as client:
        _sign_in(client, email)
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/reports").text).group(1)
        yield client, token


GOOD = {"report_type": "balance.summary", "period": "custom", "interval_start": "2024-05-01",
        "interval_end": "2024-05-31", "format": "csv"}


@pytest.mark.parametrize("changes, field", [
    ({"report_type": "no.such.report"}, "report_type"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"period": "fortnight"}, "period"),
    ({"format": "docx"}, "format"),
    ({"interval_start": "yesterday-ish"}, "interval_start"),
    ({"interval_end": "2024-04-01"}, "interval_end"),
    ({"columns": "not_a_column"}, "columns"),
    ({"currency": "doubloons"}, "currency"),
])
def test_bad_report_forms_name_the_field(admin, changes, field):
    client, token = admin
    response = client.post("/reports/new", data={**GOOD, **changes, "csrf_token": token})
    assert response.status_code == 400, response.text[:500]
    assert f'id="err-{field}"' in response.text


@pytest.mark.parametrize("path", [
    "/reports/new/fields?report_type=nope&timezone=Nowhere/City&period=custom&interval_end=x",
    "/reports?status=bogus&within=99&before=rpt_nope&type=zzz",
    "/reports/new?again=rpt_not_mine",
    "/schedules/preview?frequency=custom&cron=61+*+*+*+*&timezone=UTC",
    "/schedules/preview?frequency=daily&time=noon&timezone=Nowhere/City",
])
def test_odd_queries_never_fail_the_server(admin, path):
    client, _ = admin
    assert client.get(path).status_code < 500


def test_bad_schedule_and_key_forms_name_the_field(admin):
    client, token = admin
    bad = client.post("/schedules/new", data={"name": "x", "report_type": "balance.summary",
                                              "format": "csv", "relative_range": "last_month",
                                              "frequency": "custom", "cron": "every day",
                                              "timezone": "UTC", "csrf_token": token})
    assert bad.status_code == 400 and 'id="err-cron"' in bad.text
    bad = client.post("/schedules/new", data={"name": "x", "report_type": "balance.summary",
                                              "format": "csv", "relative_range": "last_month",
                                              "frequency": "daily", "time": "06:00",
                                              "timezone": "UTC", "webhook_url": "ftp://x",
                                              "csrf_token": token})
    assert bad.status_code == 400 and 'id="err-webhook_url"' in bad.text
    keys = client.post("/keys", data={"name": "k", "kind": "restricted", "csrf_token": token})
    assert keys.status_code == 400 and "at least one scope" in keys.text
    # Scopes ticked with Standard access: refused, not silently a key that can do everything.
    keys = client.post("/keys", data={"name": "k", "kind": "standard", "scopes": "reports:read",
                                      "csrf_token": token})
    assert keys.status_code == 400 and 'id="err-scopes"' in keys.text and "choose Restricted" in keys.text


def test_forms_need_the_sessions_csrf_token(admin):
    client, token = admin
    assert client.post("/reports/new", data=GOOD).status_code == 403
    assert client.post("/reports/new", data={**GOOD, "csrf_token": "forged"}).status_code == 403
    assert client.post("/keys", data={"name": "k"}, headers={"X-CSRF-Token": token}).status_code == 200


def test_cookies_are_secure_in_production(postgres):
    email = f"prod{secrets.token_hex(4)}@example.com"
    users.create_user("acct_prod", email, "viewer", PASSWORD, settings=postgres)
    production = postgres.model_copy(update={"environment": "production"})
    with TestClient(create_app(production), base_url="https://testserver") as client:
        cookie = _sign_in(client, email)
    assert "Secure" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


def _client_of(postgres, account: str, role: str):
    email = f"{role}{secrets.token_hex(4)}@example.com"
    user = users.create_user(account, email, role, PASSWORD, settings=postgres)
    client = TestClient(create_app(postgres))
    _sign_in(client, email)
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/reports").text).group(1)
    return client, token, user


def test_only_admins_of_the_account_manage_users(postgres):
    account = "acct_um_" + secrets.token_hex(3)
    admin, admin_token, admin_user = _client_of(postgres, account, "admin")
    analyst, analyst_token, analyst_user = _client_of(postgres, account, "analyst")
    outsider, outsider_token, _ = _client_of(postgres, "acct_um_other_" + secrets.token_hex(3), "admin")
    with admin, analyst, outsider:
        # Non-admins: 403 on the page and on every change, even with their own valid CSRF token.
        assert analyst.get("/users").status_code == 403
        for action, data in (("role", {"role": "admin"}), ("disable", {}), ("enable", {})):
            response = analyst.post(f"/users/{admin_user.id}/{action}",
                                    data={**data, "csrf_token": analyst_token})
            assert response.status_code == 403, action
        # Admin of another account: the user is not found (URL tampering).
        assert outsider.post(f"/users/{analyst_user.id}/role",
                             data={"role": "viewer", "csrf_token": outsider_token}).status_code == 404
        # Without the session's CSRF token: refused.
        assert admin.post(f"/users/{analyst_user.id}/disable", data={}).status_code == 403
        assert admin.post(f"/users/{analyst_user.id}/nonsense", data={"csrf_token": admin_token}).status_code == 404
        assert users.list_users(account, settings=postgres)[1]["role"] == "analyst"
        # The only admin cannot demote themselves: the reason is shown next to their row.
        refused = admin.post(f"/users/{admin_user.id}/role", data={"role": "viewer", "csrf_token": admin_token})
        assert refused.status_code == 400 and f'id="err-user-{admin_user.id}"' in refused.text
        bad = admin.post(f"/users/{analyst_user.id}/role", data={"role": "owner", "csrf_token": admin_token})
        assert bad.status_code == 400 and f'id="err-user-{analyst_user.id}"' in bad.text
        # The admin promotes the analyst: at their next request they manage users too.
        done = admin.post(f"/users/{analyst_user.id}/role", data={"role": "admin", "csrf_token": admin_token},
                          follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/users"
        assert analyst.get("/users").status_code == 200
        page = admin.get("/users").text
        assert "role analyst → admin" in page and admin_user.email in page


def test_report_form_delivery_is_checked_like_the_api(postgres):
    """Email syntax and the SSRF guard, as POST /v1/reports checks them (one code path), with
    the message next to the field; good targets are stored on the request."""
    guarded = postgres.model_copy(update={"webhook_allow_private_targets": False})
    email = f"deliv{secrets.token_hex(4)}@example.com"
    account = "acct_deliv_" + secrets.token_hex(3)
    users.create_user(account, email, "analyst", PASSWORD, settings=postgres)
    with TestClient(create_app(guarded)) as client:
        _sign_in(client, email)
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/reports").text).group(1)
        for changes, field, words in (
                ({"email_to": "finance@example.com, not an address"}, "email_to", "not a valid email"),
                ({"email_to": "a@example.com\r\nBcc: x@example.com"}, "email_to", "not a valid email"),
                ({"webhook_url": "http://127.0.0.1:8000/hook"}, "webhook_url", "public internet address"),
                ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url", "public internet address"),
                ({"webhook_url": "ftp://example.com/x"}, "webhook_url", "http(s)")):
            response = client.post("/reports/new", data={**GOOD, **changes, "csrf_token": token})
            assert response.status_code == 400, (changes, response.text[:300])
            error = re.search(rf'id="err-{field}"[^>]*>([^<]+)<', response.text)
            assert error and words in error.group(1), (changes, error and error.group(1))
            assert 'value="' + changes[field].split("\r")[0] in response.text  # what was typed stays
        created = client.post("/reports/new", data={
            **GOOD, "email_to": "Finance@Example.com; cfo@example.com",
            "webhook_url": "https://hooks.example.com/reports", "csrf_token": token}, follow_redirects=False)
        assert created.status_code == 303, created.text[:500]
    from exports.requests import store

    row = store.get(created.headers["location"].rsplit("/", 1)[1], account, postgres)
    assert row["email_recipients"] == ["Finance@example.com", "cfo@example.com"]
    assert row["webhook_url"] == "https://hooks.example.com/reports"
    assert row["requested_by"] == f"web:{email}"


def test_a_new_type_never_gets_the_old_types_columns(admin):
    """The form's columns were drawn for balance.summary but the type is now fees.summary (a
    click that overtook the fields' refresh): the old columns are dropped, not silently kept."""
    client, token = admin
    stale = {**GOOD, "report_type": "fees.summary", "fields_for": "balance.summary",
             "columns": ["category", "currency"], "csrf_token": token}
    response = client.post("/reports/new", data=stale)
    assert response.status_code == 400 and "now those of Fees summary" in response.text
    ticked = re.findall(r'name="columns" value="([^"]+)"[^>]*checked', response.text)
    assert ticked == ["date", "currency", "fee_type", "fee_count", "fee_amount"], ticked
    fields = client.get("/reports/new/fields", params={**stale, "csrf_token": ""})
    assert re.findall(r'name="columns" value="([^"]+)"[^>]*checked', fields.text) == ticked


def test_schedule_delivery_is_changed_and_checked(admin, postgres):
    client, token = admin
    created = client.post("/schedules/new", data={
        "name": "Month end", "report_type": "balance.summary", "format": "csv",
        "relative_range": "last_month", "frequency": "monthly", "time": "06:00", "timezone": "UTC",
        "csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303, created.text[:300]
    path = created.headers["location"]
    bad = client.post(f"{path}/delivery", data={"email_recipients": "ok@example.com, nope",
                                                "webhook_url": "", "csrf_token": token})
    assert bad.status_code == 400 and 'id="err-email_recipients"' in bad.text and "nope" in bad.text
    bad = client.post(f"{path}/delivery", data={"email_recipients": "", "webhook_url": "gopher://x",
                                                "csrf_token": token})
    assert bad.status_code == 400 and 'id="err-webhook_url"' in bad.text
    assert client.post(f"{path}/delivery", data={"email_recipients": "ok@example.com"}).status_code == 403
    saved = client.post(f"{path}/delivery", data={"email_recipients": "ok@example.com; cfo@example.com",
                                                  "webhook_url": "https://hooks.example.com/r",
                                                  "csrf_token": token}, follow_redirects=False)
    assert saved.status_code == 303
    from exports.scheduling import templates

    row = next(t for t in templates.list_templates(
        users.session_for(client.cookies.get("payreports_session"), settings=postgres).user.account_id,
        settings=postgres) if t["id"] == path.rsplit("/", 1)[1])
    assert row["email_recipients"] == ["ok@example.com", "cfo@example.com"]
    assert row["webhook_url"] == "https://hooks.example.com/r"


def test_report_form_sets_the_formats_file_options(admin, postgres):
    client, token = admin
    bad = client.post("/reports/new", data={**GOOD, "format": "pdf", "locale": "Klingon_Empire",
                                            "csrf_token": token})
    assert bad.status_code == 400 and 'id="err-locale"' in bad.text
    fields = client.get("/reports/new/fields", params={**GOOD, "format": "csv"}).text
    assert 'name="csv_bom"' in fields and 'name="timestamp_format"' in fields and 'name="locale"' not in fields
    from exports.requests import store

    def created(data):
        response = client.post("/reports/new", data={**GOOD, **data, "csrf_token": token},
                               follow_redirects=False)
        assert response.status_code == 303, response.text[:400]
        report_id = response.headers["location"].rsplit("/", 1)[1]
        again = client.get(f"/reports/new?again={report_id}").text  # Run again keeps them
        return store.get(report_id, settings=postgres)["parameters"], again

    params, again = created({"format": "csv", "csv_bom": "true", "timestamp_format": "iso8601",
                             "locale": "de_DE"})  # locale is not a CSV option: not sent
    assert params["csv_bom"] is True and params["timestamp_format"] == "iso8601" and "locale" not in params
    assert re.search(r'name="csv_bom" value="true" checked', again)
    assert re.search(r'value="iso8601" selected', again)
    params, again = created({"format": "pdf", "locale": "de-DE", "csv_bom": "true"})
    assert params["locale"] == "de-DE" and "csv_bom" not in params
    assert 'name="locale" list="locale-list" value="de-DE"' in again
