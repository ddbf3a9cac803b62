"""File options as request parameters, through the real API: `csv_bom` and `timestamp_format`
(CSV), `locale` (PDF). Validated at create (400 naming the field, also for an option given with a
format it does not apply to), stored with the request and its template, applied by the writers,
echoed in the report object (`options`) and the manifest."""

from __future__ import annotations

import re
import secrets
import subprocess
from datetime import UTC, datetime

import httpx
import pytest

from exports import db
from exports.requests import store
from exports.requests.processing import process_request
from tests.integration.test_pdf_documents import grouped, whole_token

pytestmark = pytest.mark.integration

ACTIVITY = "balance_change_from_activity.itemized"
WEEK = {"interval_start": "2026-10-05", "interval_end": "2026-10-12"}
ISO_WITH_OFFSET = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\b")
STRIPE_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b")


@pytest.fixture
def client(api_server, create_api_key):
    with api_server.client(create_api_key("acct_opt" + secrets.token_hex(4))) as opened:
        yield opened


def body(fmt: str, **parameters) -> dict:
    return {"report_type": ACTIVITY if fmt != "pdf" else "balance.summary", "format": fmt,
            "parameters": {**WEEK, **parameters}}


@pytest.mark.parametrize(("fmt", "options", "applied"), [
    ("csv", {}, {"csv_bom": False, "timestamp_format": "stripe"}),
    ("csv", {"csv_bom": True, "timestamp_format": "iso8601"},
     {"csv_bom": True, "timestamp_format": "iso8601"}),
    ("pdf", {"locale": "de-DE"}, {"locale": "de_DE"}),
    ("pdf", {}, {"locale": "en_US"}),
    # An option at its default is harmless with any format (a form may always send it).
    ("xlsx", {"csv_bom": False, "timestamp_format": "stripe"}, {}),
])
def test_valid_options_are_accepted_and_shown_as_applied(client, fmt, options, applied):
    created = client.post("/v1/reports", json=body(fmt, **options))
    assert created.status_code == 200, created.text
    report = created.json()
    assert report["options"] == applied
    assert {k: report["parameters"][k] for k in options} == options  # stored as given


@pytest.mark.parametrize(("fmt", "options", "param", "says"), [
    ("pdf", {"locale": "xx_YY"}, "parameters.locale", "not a locale we know"),
    ("pdf", {"locale": "ar_EG"}, "parameters.locale", "Latin digits"),
    ("pdf", {"locale": 42}, "parameters.locale", "locale must be"),
    ("csv", {"timestamp_format": "rfc2822"}, "parameters.timestamp_format", "iso8601"),
    ("csv", {"csv_bom": "yes"}, "parameters.csv_bom", "true or false"),
    ("pdf", {"csv_bom": True}, "parameters.csv_bom", "CSV files only"),
    ("xlsx", {"timestamp_format": "iso8601"}, "parameters.timestamp_format", "CSV files only"),
    ("csv", {"locale": "de_DE"}, "parameters.locale", "PDF files only"),
])
def test_bad_options_are_400_naming_the_field(client, fmt, options, param, says):
    response = client.post("/v1/reports", json=body(fmt, **options))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"], error


def test_templates_keep_the_options_for_every_scheduled_run(api_server, create_api_key, postgres):
    from exports.scheduling import schedule_due_reports

    template = {"name": "Daily activity for Excel", "report_type": ACTIVITY, "format": "csv",
                "schedule_cron": "0 6 * * *", "timezone": "Europe/Berlin",
                "relative_range": "yesterday",
                "parameters": {"csv_bom": True, "timestamp_format": "iso8601"}}
    with api_server.client(create_api_key("acct_opt" + secrets.token_hex(4))) as api:
        bad = api.post("/v1/report_templates", json={**template, "format": "pdf"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "parameters.csv_bom"
        bad = api.post("/v1/report_templates", json={**template, "parameters": {"locale": "nope"}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "parameters.locale"
        created = api.post("/v1/report_templates", json=template)
        assert created.status_code == 200, created.text
        saved = created.json()
        assert saved["parameters"] == template["parameters"]
    due = datetime.fromtimestamp(saved["next_run_at"], UTC)
    schedule_due_reports(postgres, now=due)
    with db.connect("app", postgres, dict_rows=True) as conn:
        [row] = conn.execute("SELECT parameters FROM report_requests WHERE template_id = %s",
                             (saved["id"],)).fetchall()
    assert row["parameters"]["csv_bom"] is True
    assert row["parameters"]["timestamp_format"] == "iso8601"


def _demo_account(settings) -> str:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT a.id FROM accounts a JOIN balance_transactions b ON b.account_id = a.id"
                            " GROUP BY a.id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]


def _run_through_the_api(api_server, create_api_key, settings, request: dict) -> tuple[dict, bytes]:
    account = _demo_account(settings)
    with api_server.client(create_api_key(account), follow_redirects=False) as api:
        created = api.post("/v1/reports", json=request)
        assert created.status_code == 200, created.text
        report_id = created.json()["id"]
        assert process_request(report_id, settings, run_id="test-file-options") == "completed"
        report = api.get(f"/v1/reports/{report_id}").json()
        content = httpx.get(report["download_url"]).content
    return report, content


def test_csv_options_are_applied_to_the_file(demo_platform, api_server, create_api_key):
    settings = demo_platform.settings
    report, content = _run_through_the_api(api_server, create_api_key, settings, {
        "report_type": ACTIVITY, "format": "csv",
        "parameters": {**WEEK, "csv_bom": True, "timestamp_format": "iso8601"}})
    assert report["options"] == {"csv_bom": True, "timestamp_format": "iso8601"}
    assert content.startswith(b"\xef\xbb\xbf")
    text = content.decode("utf-8-sig")
    assert ISO_WITH_OFFSET.search(text) and not STRIPE_TIME.search(text)
    manifest = store.get(report["id"], settings=settings)["manifest"]
    assert manifest["extra"]["options"] == report["options"]
    # The default stays Stripe's bytes: no BOM, wall times without an offset.
    report, content = _run_through_the_api(api_server, create_api_key, settings, {
        "report_type": ACTIVITY, "format": "csv", "parameters": WEEK})
    assert not content.startswith(b"\xef\xbb\xbf")
    assert STRIPE_TIME.search(content.decode()) and not ISO_WITH_OFFSET.search(content.decode())


def test_pdf_locale_is_applied_to_the_document(demo_platform, api_server, create_api_key, tmp_path):
    settings = demo_platform.settings
    report, content = _run_through_the_api(api_server, create_api_key, settings, {
        "report_type": "balance.summary", "format": "pdf",
        "parameters": {"interval_start": "2026-09-01", "interval_end": "2026-11-01",
                       "locale": "de_DE"}})
    assert report["options"] == {"locale": "de_DE"}
    pdf = tmp_path / "de.pdf"
    pdf.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    ending = next(iter(report["totals_minor"]["ending_balance"].items()))
    currency, minor = ending
    exponent = store.get(report["id"], settings=settings)["manifest"]["currency_exponents"][currency]
    assert abs(minor) >= 1000 * 10 ** exponent  # so it has a group separator
    assert whole_token(grouped(minor, exponent, ".", ",")).search(text)
    assert not whole_token(grouped(minor, exponent)).search(text)
