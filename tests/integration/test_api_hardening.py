"""Hostile and unlucky input against the real Report API (uvicorn + embedded Postgres): every bad
input is a 4xx naming the field (never a 5xx), errors do not echo large input back, bodies are
strict JSON types, responses carry the security headers, idempotent replays spend no rate-limit
budget, and webhook receivers see the very report object API clients see."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from exports.delivery import notify_report_finished
from exports.requests import store
from tests.fixtures.api import start_api, stop_api
from tests.integration.test_delivery import complete_with_file

pytestmark = pytest.mark.integration

REPORT = {"report_type": "balance.summary", "format": "csv",
          "parameters": {"interval_start": "2024-05-01", "interval_end": "2024-06-01"}}
TEMPLATE = {"name": "Daily activity", "report_type": "balance_change_from_activity.itemized",
            "format": "csv", "schedule_cron": "0 6 * * *", "timezone": "Europe/Berlin",
            "relative_range": "yesterday", "email_recipients": ["finance@example.com"]}
MEGABYTE = "x" * 1_000_000


@pytest.fixture
def client(api_server, create_api_key):
    with api_server.client(create_api_key("acct_hard" + secrets.token_hex(4)),
                           follow_redirects=False) as client:
        yield client


def assert_400(response: httpx.Response, param: str) -> dict:
    assert response.status_code == 400, (response.status_code, response.text[:2000])
    error = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error" and error["message"]
    return error


# ------------------------------------------------------------------------------- NUL characters

@pytest.mark.parametrize(("method", "path", "param"), [
    ("GET", "/v1/reports/rpt_%00", "report_id"),
    ("POST", "/v1/reports/rpt_%00/cancel", "report_id"),
    ("GET", "/v1/reports/rpt_%00/deliveries", "report_id"),
    ("GET", "/v1/report_templates/rtpl_%00", "template_id"),
    ("DELETE", "/v1/report_templates/rtpl_%00", "template_id"),
    ("POST", "/v1/notifications/ntf_%00/read", "notification_id"),
    ("GET", "/v1/reports?starting_after=rpt_%00", "starting_after"),
    ("GET", "/v1/reports?type=balance%00", "type"),
    ("GET", "/files/acct/x%00.csv?expires=1&sig=a", "key"),
])
def test_nul_in_paths_and_queries_is_a_400_naming_it(client, method, path, param):
    assert_400(client.request(method, path), param)


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/reports", {**REPORT, "parameters": {**REPORT["parameters"], "timezone": "UTC\u0000"}},
     "parameters.timezone"),
    ("/v1/reports", {**REPORT, "parameters": {**REPORT["parameters"], "currency\u0000": "usd"}},
     "parameters.currency\u0000"),
    ("/v1/reports", {**REPORT, "email_to": ["a@example.com", "b\u0000@example.com"]}, "email_to[1]"),
    ("/v1/reports", {**REPORT, "report_type": "balance.summary\u0000"}, "report_type"),
    ("/v1/report_templates", {**TEMPLATE, "name": "Daily\u0000"}, "name"),
    ("/v1/report_templates", {**TEMPLATE, "description": "\u0000"}, "description"),
    ("/v1/report_templates", {**TEMPLATE, "parameters": {"columns": ["a\u0000"]}}, "parameters.columns[0]"),
])
def test_nul_in_json_strings_is_a_400_naming_the_field(client, path, body, param):
    assert_400(client.post(path, json=body), param)


@pytest.mark.parametrize(("path", "raw", "param"), [
    # A lone surrogate is a valid JSON escape but not UTF-8: Postgres cannot store it.
    ("/v1/reports", '{"report_type": "balance.summary", "parameters": {"interval_start": "2024-05-01",'
                    ' "interval_end": "2024-06-01", "currency": "\\ud800"}}', "parameters.currency"),
    ("/v1/reports", '{"report_type": "balance.summary", "email_to": ["a\\udc00@example.com"]}', "email_to[0]"),
    ("/v1/report_templates", '{"name": "\\ud83d", "report_type": "balance.summary", "format": "csv"}', "name"),
    # NaN and Infinity are not JSON (Python's parser accepts them; jsonb does not).
    ("/v1/reports", '{"report_type": "balance.summary", "parameters": {"interval_start": NaN,'
                    ' "interval_end": "2024-06-01"}}', "body"),
    ("/v1/reports", '{"report_type": "balance.summary", "parameters": {"interval_start": 1e400,'
                    ' "interval_end": "2024-06-01"}}', "body"),
    ("/v1/report_templates", '{"name": "x", "report_type": "balance.summary", "format": "csv",'
                             ' "parameters": {"interval_end": -Infinity}}', "body"),
    ("/v1/reports", '{"report_type": "balance.summary",', "body"),
    ("/v1/reports", "[" * 100_000 + "]" * 100_000, "body"),
    ("/v1/reports", '{"report_type": "balance.summary", "parameters": {"filters": '
                    + '{"a": ' * 40 + "1" + "}" * 40 + "}}", "body"),
    ("/v1/reports", '{"report_type": "balance.summary", "parameters": {"interval_start": ' + "9" * 5000 + "}}",
     "body"),
])
def test_json_postgres_cannot_store_or_python_cannot_parse_is_a_400(client, path, raw, param):
    response = client.post(path, content=raw.encode(), headers={"Content-Type": "application/json"})
    assert_400(response, param)


# --------------------------------------------------------------------- dates, cron, timezones

@pytest.mark.parametrize(("parameters", "param"), [
    ({"interval_start": "0001-01-01", "interval_end": "0001-01-02", "timezone": "Pacific/Kiritimati"},
     "parameters.interval_start"),
    ({"interval_start": "0001-01-01T00:00:00", "interval_end": "0001-01-02", "timezone": "Asia/Tokyo"},
     "parameters.interval_start"),
    ({"interval_start": "2024-05-01", "interval_end": "9999-12-31", "timezone": "America/New_York"},
     "parameters.interval_end"),
    ({"interval_start": "2024-05-01", "interval_end": "9999-12-31T23:59:59-12:00"},
     "parameters.interval_end"),
    ({"interval_start": "2024-05-01", "interval_end": 10 ** 15}, "parameters.interval_end"),
    ({"interval_start": -10 ** 15, "interval_end": "2024-06-01"}, "parameters.interval_start"),
    ({"interval_start": 1e300, "interval_end": "2024-06-01"}, "parameters.interval_start"),
])
def test_dates_out_of_range_are_400_not_overflows(client, parameters, param):
    assert_400(client.post("/v1/reports", json={**REPORT, "parameters": parameters}), param)


@pytest.mark.parametrize(("overrides", "param"), [
    ({"schedule_cron": "0 0 31 2 *"}, "schedule_cron"),  # Feb 31st: never
    ({"schedule_cron": "0 0 30 2 *"}, "schedule_cron"),
    ({"schedule_cron": "0 0 31 4,6,9,11 *"}, "schedule_cron"),
    ({"schedule_cron": "* " * 2000}, "schedule_cron"),
    ({"schedule_cron": "H * * * *"}, "schedule_cron"),  # croniter raises instead of saying invalid
    ({"timezone": "America"}, "timezone"),  # a directory of the zone database
    ({"timezone": "Europe/"}, "timezone"),
    ({"timezone": "../../../../etc/passwd"}, "timezone"),
    ({"timezone": "A" * 5000}, "timezone"),
    ({"parameters": {"timezone": "America"}}, "parameters.timezone"),
])
def test_templates_reject_crons_that_never_fire_and_bad_timezones(client, overrides, param):
    assert_400(client.post("/v1/report_templates", json={**TEMPLATE, **overrides}), param)


@pytest.mark.parametrize("timezone", ["America", "Europe/", "A" * 5000, "/etc/passwd"])
def test_report_timezones_that_are_directories_or_too_long_are_400(client, timezone):
    body = {**REPORT, "parameters": {**REPORT["parameters"], "timezone": timezone}}
    assert_400(client.post("/v1/reports", json=body), "parameters.timezone")


def test_a_non_ascii_signature_is_403_not_a_type_error(api_server):
    response = httpx.get(f"{api_server.base_url}/files/acct_x/r.csv",
                         params={"expires": "9999999999", "sig": "é" * 64})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["param"] == "sig"


# ------------------------------------------------------------------------ strict JSON types

@pytest.mark.parametrize(("overrides", "param"), [
    ({"schedule_enabled": "false"}, "schedule_enabled"),
    ({"schedule_enabled": 0}, "schedule_enabled"),
    ({"description": 12345}, "description"),
    ({"name": ["Daily", "activity"]}, "name"),
    ({"name": {"en": "Daily"}}, "name"),
    ({"report_type": 7}, "report_type"),
    ({"format": ["csv"]}, "format"),
    ({"parameters": ["interval_end"]}, "parameters"),
    ({"email_recipients": "finance@example.com"}, "email_recipients"),
    ({"email_recipients": [42]}, "email_recipients[0]"),
    ({"catch_up": True}, "catch_up"),
    ({"relative_range": 7}, "relative_range"),
    ({"webhook_url": {"url": "https://example.com"}}, "webhook_url"),
    ({"webhook_url": "https://[::1/hooks"}, "webhook_url"),
    ({"surprise": None}, "surprise"),
    ({"name": "Daily\r\nBcc: everyone@example.com"}, "name"),
    ({"description": MEGABYTE}, "description"),
    ({"email_recipients": ["finance@example.com\r\nBcc: x@evil.example"]}, "email_recipients[0]"),
])
def test_template_fields_of_the_wrong_type_are_400_never_coerced(client, overrides, param):
    assert_400(client.post("/v1/report_templates", json={**TEMPLATE, **overrides}), param)


def test_template_updates_are_strict_too(client):
    created = client.post("/v1/report_templates", json=TEMPLATE)
    assert created.status_code == 200, created.text
    template_id = created.json()["id"]
    assert_400(client.patch(f"/v1/report_templates/{template_id}", json={"schedule_enabled": "false"}),
               "schedule_enabled")
    assert_400(client.post(f"/v1/report_templates/{template_id}", json={"description": 1}), "description")
    assert_400(client.post(f"/v1/report_templates/{template_id}", json=["name"]), "body")
    assert client.get(f"/v1/report_templates/{template_id}").json()["schedule_enabled"] is True
    disabled = client.patch(f"/v1/report_templates/{template_id}", json={"schedule_enabled": False})
    assert disabled.json()["schedule_enabled"] is False and disabled.json()["next_run_at"] is None


@pytest.mark.parametrize(("overrides", "param"), [
    ({"email_to": ["finance@example.com\r\nBcc: everyone@example.com"]}, "email_to[0]"),
    ({"email_to": ["finance@example.com", "not an address"]}, "email_to[1]"),
    ({"email_to": [MEGABYTE + "@example.com"]}, "email_to[0]"),
    ({"email_to": ["a@example.com"] * 21}, "email_to"),
    ({"email_to": "finance@example.com"}, "email_to"),
    ({"parameters": {**REPORT["parameters"], "surprise": None}}, "parameters.surprise"),
    ({"parameters": {**REPORT["parameters"], "filters": {"surprise": None}}}, "parameters.surprise"),
    ({"report_type": 5}, "report_type"),
    ({"format": True}, "format"),
    ({"parameters": "interval_end=2024-06-01"}, "parameters"),
    ({"webhook_url": 12}, "webhook_url"),
    ({"webhook_url": "http://"}, "webhook_url"),
    ({"webhook_url": "http://[::1"}, "webhook_url"),  # urlsplit raises on the open bracket
    ({"unknown": None}, "unknown"),
])
def test_report_requests_validate_recipients_and_parameters_like_templates(client, overrides, param):
    response = client.post("/v1/reports", json={**REPORT, **overrides})
    assert_400(response, param)
    assert client.get("/v1/reports").json()["data"] == []  # nothing stored


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/reports", {**REPORT, "report_type": MEGABYTE}),
    ("/v1/reports", {**REPORT, "format": MEGABYTE}),
    ("/v1/reports", {**REPORT, "parameters": {**REPORT["parameters"], "timezone": MEGABYTE}}),
    ("/v1/reports", {**REPORT, "parameters": {"interval_start": MEGABYTE, "interval_end": "2024-06-01"}}),
    ("/v1/reports", {**REPORT, "parameters": {**REPORT["parameters"], MEGABYTE: 1}}),
    ("/v1/reports", {**REPORT, "parameters": {**REPORT["parameters"], "columns": [MEGABYTE]}}),
    ("/v1/reports", {**REPORT, "parameters": {**REPORT["parameters"], "relative_range": MEGABYTE}}),
    ("/v1/reports", {**REPORT, "email_to": [MEGABYTE]}),
    ("/v1/report_templates", {**TEMPLATE, "schedule_cron": MEGABYTE}),
    ("/v1/report_templates", {**TEMPLATE, "name": MEGABYTE}),
    ("/v1/report_templates", {**TEMPLATE, "report_type": MEGABYTE}),
    ("/v1/report_templates", {**TEMPLATE, "email_recipients": [MEGABYTE]}),
    ("/v1/report_templates", {**TEMPLATE, "parameters": {"currency": MEGABYTE}}),
])
def test_errors_do_not_echo_large_input(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text[:500]
    assert len(response.content) < 5000


@pytest.mark.parametrize("chunked", [False, True])
def test_bodies_over_the_limit_are_413_in_the_error_shape(client, chunked):
    from api.app import MAX_BODY_BYTES

    raw = b'{"name": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    content = (raw[i:i + 65536] for i in range(0, len(raw), 65536)) if chunked else raw
    response = client.post("/v1/report_templates", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"]["param"] == "body" and response.headers["x-request-id"]
    assert len(response.content) < 1000


def test_a_long_cursor_is_not_echoed_whole(client):
    response = client.get("/v1/reports", params={"starting_after": "rpt_" + "x" * 20000})
    assert response.status_code == 400 and len(response.content) < 5000


def test_columns_listed_many_times_are_rejected_quickly(client):
    body = {**REPORT, "parameters": {**REPORT["parameters"], "columns": ["category"] * 100_000}}
    response = client.post("/v1/reports", json=body, timeout=10)
    assert_400(response, "parameters.columns")


# -------------------------------------------------------------------------- response headers

def test_secrets_and_signed_urls_are_not_cacheable_and_nothing_is_sniffed(client, api_server, postgres, tmp_path):
    secret = client.get("/v1/webhook_secret")
    assert secret.headers["cache-control"] == "no-store"
    assert client.post("/v1/webhook_secret/rotate").headers["cache-control"] == "no-store"
    created = client.post("/v1/reports", json=REPORT)
    assert created.status_code == 200, created.text
    row = complete_with_file(postgres, tmp_path, store.get(created.json()["id"], settings=postgres))
    for response in (client.get(f"/v1/reports/{row['id']}"), client.get("/v1/reports"),
                     client.get(f"/v1/reports/{row['id']}/download")):
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
    location = client.get(f"/v1/reports/{row['id']}/download").headers["location"]
    downloaded = httpx.get(location)
    assert downloaded.status_code == 200
    assert downloaded.headers["cache-control"] == "no-store"
    assert downloaded.headers["x-content-type-options"] == "nosniff"
    for response in (httpx.get(f"{api_server.base_url}/openapi.json"), client.get("/v1/nope"),
                     httpx.get(f"{api_server.base_url}/v1/reports")):
        assert response.headers["x-content-type-options"] == "nosniff"


def test_405_names_every_method_of_the_path(client):
    response = client.put("/v1/report_templates")
    assert response.status_code == 405
    assert {"GET", "POST"} <= set(response.headers["allow"].replace(" ", "").split(","))
    response = client.put("/v1/report_templates/rtpl_x")
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(response.headers["allow"].replace(" ", "").split(","))


# -------------------------------------------------------------------------------- idempotency

def test_idempotent_replays_spend_no_rate_limit_tokens(postgres, create_api_key, tmp_path):
    proc, base_url = start_api({"PAYREPORTS_API_RATE_BURST": "2", "PAYREPORTS_API_RATE_PER_SECOND": "0.01"},
                               str(tmp_path / "api.log"))
    try:
        key = create_api_key("acct_idem" + secrets.token_hex(4))
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            headers = {"Idempotency-Key": "retry-me"}
            first = api.post("/v1/reports", json=REPORT, headers=headers)
            assert first.status_code == 200, first.text
            replays = [api.post("/v1/reports", json=REPORT, headers=headers) for _ in range(5)]
            assert [r.status_code for r in replays] == [200] * 5
            assert {r.json()["id"] for r in replays} == {first.json()["id"]}
            conflict = api.post("/v1/reports", json={**REPORT, "format": "pdf"}, headers=headers)
            assert conflict.status_code == 409
            # The second token is still there for a new request; the third request is limited.
            assert api.post("/v1/reports", json=REPORT).status_code == 200
            assert api.post("/v1/reports", json=REPORT).status_code == 429
            # ...and a replay still gets its report while the account is limited.
            assert api.post("/v1/reports", json=REPORT, headers=headers).json()["id"] == first.json()["id"]
    finally:
        stop_api(proc)


# ------------------------------------------------------------------------ one report object

def test_webhook_receivers_see_the_object_api_clients_see(client, postgres, webhook_receiver, tmp_path):
    webhook_receiver.clear()
    created = client.post("/v1/reports", json={**REPORT, "webhook_url": webhook_receiver.url("/same")})
    assert created.status_code == 200, created.text
    row = complete_with_file(postgres, tmp_path, store.get(created.json()["id"], settings=postgres))
    notify_report_finished(row["id"], postgres, now=datetime.now(UTC))
    [received] = webhook_receiver.received("/same")
    sent = json.loads(received.body)["data"]["object"]
    shown = client.get(f"/v1/reports/{row['id']}").json()
    assert set(sent) == set(shown)
    assert sent["object"] == shown["object"] == "report"
    links = ("download_url", "download_url_expires_at")  # each response signs a fresh link
    assert {k: v for k, v in sent.items() if k not in links} == {k: v for k, v in shown.items() if k not in links}
    assert sent["totals_minor"] == {"gross": {"usd": 1034, "eur": 500}}
    # One link lifetime for both: the API's download_url_ttl_seconds.
    for obj in (sent, shown):
        lifetime = obj["download_url_expires_at"] - int(datetime.now(UTC).timestamp())
        assert timedelta(seconds=lifetime) <= timedelta(seconds=postgres.download_url_ttl_seconds)


# ------------------------------------------------------------------------------------ OpenAPI

def test_openapi_describes_codes_errors_security_and_types(api_server):
    document = httpx.get(f"{api_server.base_url}/openapi.json").json()
    components = document["components"]
    scheme = components["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    # 403: restricted API keys (scopes) without the route's scope.
    expected = {("post", "/v1/reports"): {"200", "400", "401", "403", "409", "413", "429", "503"},
                ("get", "/v1/reports/{report_id}"): {"200", "400", "401", "403", "404", "503"},
                ("get", "/v1/reports/{report_id}/download"): {"302", "400", "401", "403", "404", "409", "410", "503"},
                ("get", "/files/{key}"): {"200", "400", "403", "404", "503"}}
    for (method, path), codes in expected.items():
        assert set(document["paths"][path][method]["responses"]) == codes, (method, path)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == error_ref, (method, path, code)
                if code == "200" and path != "/files/{key}":
                    schema = response["content"]["application/json"]["schema"]
                    assert "$ref" in schema, (method, path)  # a named, typed object
            if path.startswith("/v1/"):
                assert operation["security"] == [{"apiKey": []}], (method, path)
            body = operation.get("requestBody")
            if body:
                assert "$ref" in body["content"]["application/json"]["schema"], (method, path)
    schemas = components["schemas"]
    for name in ("TemplateObject", "DeliveryList", "NotificationList", "WebhookSecret", "ReportTypeList"):
        assert name in schemas
    end = schemas["ReportTypeObject"]["properties"]["data_available_end"]
    assert {"type": "integer"} in end["anyOf"]
    assert schemas["NewTemplate"]["properties"]["schedule_enabled"]["anyOf"][0] == {"type": "boolean"}
