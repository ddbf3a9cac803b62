"""The Report API as a real uvicorn process: auth, scoping, validation, idempotency, limits,
pagination, cancel, signed local downloads."""

import hashlib
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest

from exports.requests import store
from exports.storage import get_storage, report_key
from tests.fixtures.api import start_api, stop_api

pytestmark = pytest.mark.integration

BODY = {"report_type": "balance.summary.1", "format": "csv",
        "parameters": {"interval_start": 1714521600, "interval_end": 1717200000}}


def _account() -> str:
    return "acct_" + secrets.token_hex(6)


@pytest.fixture
def account_client(api_server, create_api_key):
    clients = []

    def make(account: str | None = None):
        account = account or _account()
        client = api_server.client(create_api_key(account), follow_redirects=False)
        clients.append(client)
        return account, client

    yield make
    for client in clients:
        client.close()


def test_requires_a_valid_key(api_server):
    with api_server.client() as anonymous:
        response = anonymous.get("/v1/reports")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    with api_server.client("rk_not-a-real-key") as wrong:
        assert wrong.post("/v1/reports", json=BODY).status_code == 401


def test_create_and_retrieve_report_object(account_client):
    _, client = account_client()
    created = client.post("/v1/reports", json=BODY)
    assert created.status_code == 200, created.text
    report = created.json()
    assert report["id"].startswith("rpt_") and report["object"] == "report"
    assert report["status"] == "pending" and report["progress"] == 0
    assert report["parameters"] == BODY["parameters"] and report["download_url"] is None
    assert abs(report["created_at"] - time.time()) < 60
    fetched = client.get(f"/v1/reports/{report['id']}").json()
    assert fetched["id"] == report["id"] and fetched["report_type"] == BODY["report_type"]


def test_account_comes_from_the_key_and_other_accounts_get_404(account_client):
    owner_account, owner = account_client()
    _, stranger = account_client()
    report_id = owner.post("/v1/reports", json=BODY).json()["id"]
    assert store.get(report_id, settings=None)["account_id"] == owner_account
    for method, path in [("GET", f"/v1/reports/{report_id}"),
                         ("GET", f"/v1/reports/{report_id}/download"),
                         ("POST", f"/v1/reports/{report_id}/cancel")]:
        response = stranger.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        missing = stranger.request(method, path.replace(report_id, "rpt_doesnotexist"))
        assert missing.json()["error"]["code"] == response.json()["error"]["code"]
    assert stranger.get("/v1/reports").json()["data"] == []
    assert owner.get(f"/v1/reports/{report_id}").json()["status"] == "pending"


@pytest.mark.parametrize("body, param", [
    ({**BODY, "parameters": {"interval_start": 1717200000, "interval_end": 1714521600}},
     "parameters.interval_end"),
    ({**BODY, "report_type": "no.such.report"}, "report_type"),
    ({**BODY, "format": "docx"}, "format"),
    ({**BODY, "email_to": "not-a-list"}, "email_to"),
    ({**BODY, "surprise": 1}, "surprise"),
    ({"format": "csv"}, "report_type"),
])
def test_bad_input_is_400_naming_the_field(account_client, body, param):
    _, client = account_client()
    response = client.post("/v1/reports", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_idempotency_key_replays_and_conflicts(account_client):
    account, client = account_client()
    headers = {"Idempotency-Key": "same-key"}
    first = client.post("/v1/reports", json=BODY, headers=headers)
    second = client.post("/v1/reports", json=BODY, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    conflict = client.post("/v1/reports", json={**BODY, "format": "xlsx"}, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["error"]["param"] == "Idempotency-Key"
    rows, _ = store.list_requests(account)
    assert len(rows) == 1


def test_pagination_and_filters(account_client):
    _, client = account_client()
    ids = [client.post("/v1/reports", json=BODY).json()["id"] for _ in range(5)]
    client.post(f"/v1/reports/{ids[2]}/cancel")
    page1 = client.get("/v1/reports", params={"limit": 2}).json()
    assert page1["object"] == "list" and page1["has_more"] is True
    page2 = client.get("/v1/reports", params={"limit": 2, "starting_after": page1["data"][-1]["id"]}).json()
    page3 = client.get("/v1/reports", params={"limit": 2, "starting_after": page2["data"][-1]["id"]}).json()
    assert page3["has_more"] is False
    assert [r["id"] for p in (page1, page2, page3) for r in p["data"]] == list(reversed(ids))
    canceled = client.get("/v1/reports", params={"status": "canceled"}).json()["data"]
    assert [r["id"] for r in canceled] == [ids[2]]
    assert client.get("/v1/reports", params={"type": "other.type"}).json()["data"] == []
    bad = client.get("/v1/reports", params={"limit": 1000})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_cancel_pending_then_cancel_again_is_stable(account_client):
    _, client = account_client()
    report_id = client.post("/v1/reports", json=BODY).json()["id"]
    canceled = client.post(f"/v1/reports/{report_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert client.post(f"/v1/reports/{report_id}/cancel").json()["status"] == "canceled"
    download = client.get(f"/v1/reports/{report_id}/download")
    assert download.status_code == 409


def test_rate_limit_returns_429_with_retry_after(postgres, create_api_key, tmp_path):
    proc, base_url = start_api({"PAYREPORTS_API_RATE_BURST": "3", "PAYREPORTS_API_RATE_PER_SECOND": "0.2"},
                               str(tmp_path / "api.log"))
    try:
        import httpx

        key = create_api_key(_account())
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as client:
            # Invalid bodies still spend tokens, so no rows (and no runs) are created here.
            bad = {**BODY, "report_type": "no.such.report"}
            statuses = [client.post("/v1/reports", json=bad) for _ in range(4)]
        assert [r.status_code for r in statuses[:3]] == [400, 400, 400]
        limited = statuses[3]
        assert limited.status_code == 429
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(limited.headers["Retry-After"]) <= 5
    finally:
        stop_api(proc)


def _complete_with_file(account: str, report_id: str, content: bytes, tmp_path, settings) -> str:
    row = store.claim_for_processing(report_id, None, settings)
    key = report_key(account, row["created_at"], report_id, "csv", settings)
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    get_storage(settings).put(path, key, "text/csv")
    store.complete(report_id, file_key=key, file_size_bytes=len(content), row_count=1,
                   sha256=hashlib.sha256(content).hexdigest(), manifest={}, data_version=None,
                   expires_at=datetime.now(timezone.utc) + timedelta(days=1), settings=settings)
    return key


def test_signed_local_download_and_tampering(account_client, postgres, tmp_path):
    account, client = account_client()
    report_id = client.post("/v1/reports", json=BODY).json()["id"]
    content = b"category,net_amount\ncharge,12.34\n"
    _complete_with_file(account, report_id, content, tmp_path, postgres)

    report = client.get(f"/v1/reports/{report_id}").json()
    assert report["status"] == "completed" and report["file_size"] == len(content)
    redirect = client.get(f"/v1/reports/{report_id}/download")
    assert redirect.status_code == 302
    url = redirect.headers["location"]
    import httpx

    downloaded = httpx.get(url)
    assert downloaded.status_code == 200 and downloaded.content == content
    assert f"{report_id}.csv" in downloaded.headers["content-disposition"]

    query = parse_qs(urlparse(url).query)
    expires, sig = query["expires"][0], query["sig"][0]
    path = urlparse(url).path
    base = url.split("/files/")[0]
    other_key = path.replace(report_id, "rpt_someoneelse")
    assert httpx.get(f"{base}{other_key}?expires={expires}&sig={sig}").status_code == 403
    assert httpx.get(f"{base}{path}?expires={int(expires) + 10}&sig={sig}").status_code == 403
    assert httpx.get(f"{base}{path}?expires={expires}&sig={'0' * 64}").status_code == 403
    assert httpx.get(f"{base}{path}").status_code == 403
    from exports.storage import signing

    key = path.removeprefix("/files/")
    past_expiry, past_sig = signing.sign(postgres.signing_secret, key, -10)
    expired = httpx.get(f"{base}{path}?expires={past_expiry}&sig={past_sig}")
    assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]


def test_download_after_expiry_is_410_and_metadata_stays(account_client, postgres, tmp_path):
    from exports.requests.retention import expire_reports

    account, client = account_client()
    report_id = client.post("/v1/reports", json=BODY).json()["id"]
    _complete_with_file(account, report_id, b"x\n", tmp_path, postgres)
    assert report_id in expire_reports(postgres, now=datetime.now(timezone.utc) + timedelta(days=2))
    assert client.get(f"/v1/reports/{report_id}/download").status_code == 410
    report = client.get(f"/v1/reports/{report_id}").json()
    assert report["status"] == "expired" and report["file_size"] == 2 and report["download_url"] is None


def test_openapi_docs_are_served(api_server):
    with api_server.client() as client:
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/reports", "/v1/reports/{report_id}", "/v1/report_types"} <= set(paths)


def test_reports_list_read_and_download_while_the_warehouse_is_unavailable(account_client, postgres, tmp_path):
    """Status reads and downloads depend only on the app database and the file storage (the
    design's 99.9% download availability): with no Dagster daemon running in this module and the
    embedded warehouse held by another process (any attempt to open it would block), existing
    reports still list, read and download, promptly."""
    import time

    import httpx

    from exports.warehouse import warehouse_lock

    account, client = account_client()
    report_id = client.post("/v1/reports", json=BODY).json()["id"]
    content = b"category,net_amount\nactivity,1.00\n"
    _complete_with_file(account, report_id, content, tmp_path, postgres)
    with warehouse_lock(postgres, purpose="test: warehouse unavailable", wait_seconds=5):
        started = time.monotonic()
        listed = client.get("/v1/reports").json()["data"]
        assert report_id in [report["id"] for report in listed]
        assert client.get(f"/v1/reports/{report_id}").json()["status"] == "completed"
        redirect = client.get(f"/v1/reports/{report_id}/download")
        assert redirect.status_code == 302
        assert httpx.get(redirect.headers["location"]).content == content
        assert time.monotonic() - started < 5


def test_each_request_is_logged_with_the_id_its_response_returns(account_client, api_server):
    account, client = account_client()
    traced = client.get("/v1/reports", headers={"X-Request-Id": "trace-abc.123"})
    assert traced.status_code == 200 and traced.headers["x-request-id"] == "trace-abc.123"
    # Not a plain token: replaced, so a caller cannot write arbitrary text into the logs.
    odd = client.get("/v1/reports", headers={"X-Request-Id": "two words"})
    assert odd.headers["x-request-id"].startswith("req_")
    assert client.get("/v1/reports").headers["x-request-id"].startswith("req_")

    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in open(api_server.log_path, encoding="utf-8")
                 if "request_id=trace-abc.123" in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) == 1, open(api_server.log_path, encoding="utf-8").read()[-2000:]
    line = lines[0]
    assert "api.requests: request " in line
    for field in ("method=GET", "path=/v1/reports", "status=200", f"account_id={account}", "duration_ms="):
        assert field in line
