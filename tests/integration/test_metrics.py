"""/metrics, /readyz and /healthz of the real API over real rows: requests created and moved
through their states by exports/requests/store.py, deliveries made by exports/delivery, and
replication watermarks in the app database."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exports import db
from exports.delivery import notify_report_finished
from exports.requests import store
from exports.requests.lifecycle import internal_error_message
from exports.settings import REPO_ROOT
from tests.fixtures.api import start_api, stop_api
from tests.fixtures.services import free_port

pytestmark = pytest.mark.integration


def _scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _new(report_type: str, fmt: str = "csv", webhook_url: str | None = None, settings=None) -> str:
    row, _ = store.create(store.NewRequest(account_id="acct_metrics", report_type=report_type,
                                           parameters={}, format=fmt, webhook_url=webhook_url),
                          settings)
    return row["id"]


def _complete(request_id: str, seconds: float, rows: int, size: int, settings) -> None:
    store.claim_for_processing(request_id, "run-metrics", settings)
    store.complete(request_id, file_key=f"reports/{request_id}.csv", file_size_bytes=size,
                   row_count=rows, sha256="0" * 64, manifest={}, data_version=None,
                   expires_at=datetime.now(timezone.utc) + timedelta(days=7), settings=settings)
    # Generation time is what the histogram measures: give each report a known one.
    with db.connect("app", settings, autocommit=True) as conn:
        conn.execute("UPDATE report_requests SET started_at = completed_at - make_interval(secs => %s) "
                     "WHERE id = %s", (seconds, request_id))


def test_metrics_reflect_the_app_database(postgres, api_server):
    settings = postgres
    before = _scrape(api_server.base_url)
    report_type = f"ops_metrics_{secrets.token_hex(4)}"

    for seconds, rows, size in ((2, 10, 1_000), (40, 200, 30_000), (700, 5_000, 900_000)):
        _complete(_new(report_type, settings=settings), seconds, rows, size, settings)
    completed_xlsx = _new(report_type, "xlsx", settings=settings)
    _complete(completed_xlsx, 1, 3, 4_000, settings)
    notify_report_finished(completed_xlsx, settings)  # in-app notification: a sent attempt

    internal = _new(report_type, webhook_url=f"http://127.0.0.1:{free_port()}/hook", settings=settings)
    store.claim_for_processing(internal, "run-metrics", settings)
    store.fail(internal, internal_error_message("run-metrics"), settings)
    # In-app (sent) and a webhook to a closed port (a failed attempt).
    notify_report_finished(internal, settings)
    store.fail(_new(report_type, settings=settings), "interval_end must be after interval_start",
               settings)
    for _ in range(3):
        _new(report_type, settings=settings)  # pending
    store.claim_for_processing(_new(report_type, settings=settings), "run-metrics", settings)

    table = f"ops_metrics_{secrets.token_hex(4)}"
    with db.connect("app", settings, autocommit=True) as conn:
        conn.execute("INSERT INTO replication_watermarks (table_name, watermark, rows_pulled) "
                     "VALUES (%s, now() - interval '2 hours', 5)", (table,))

    try:
        after = _scrape(api_server.base_url)
    finally:
        # The app database is shared by the session: a fake table's watermark must not outlive
        # the scrape (data_available_end and the replication tests read every watermark).
        with db.connect("app", settings, autocommit=True) as conn:
            conn.execute("DELETE FROM replication_watermarks WHERE table_name = %s", (table,))

    def delta(name: str, **labels) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert _value(after, "payreports_app_db_up") == 1
    csv = {"report_type": report_type, "format": "csv"}
    buckets = {le: _value(after, "payreports_report_duration_seconds_bucket", le=le, **csv)
               for le in ("1.0", "5.0", "30.0", "60.0", "600.0", "900.0", "+Inf")}
    assert buckets == {"1.0": 0, "5.0": 1, "30.0": 1, "60.0": 2, "600.0": 2, "900.0": 3, "+Inf": 3}
    assert _value(after, "payreports_report_duration_seconds_count", **csv) == 3
    assert _value(after, "payreports_report_duration_seconds_sum", **csv) == pytest.approx(742)
    xlsx = {"report_type": report_type, "format": "xlsx"}
    assert _value(after, "payreports_report_duration_seconds_count", **xlsx) == 1

    assert _value(after, "payreports_report_rows_exported_total", **csv) == 5_210
    assert _value(after, "payreports_report_bytes_exported_total", **csv) == 931_000
    assert _value(after, "payreports_report_rows_exported_total", **xlsx) == 3

    assert delta("payreports_reports_finished_total", status="completed") == 4
    assert delta("payreports_reports_finished_total", status="failed") == 2
    assert delta("payreports_report_failures_total", reason="internal") == 1
    assert delta("payreports_report_failures_total", reason="request") == 1
    assert delta("payreports_reports_queue_depth") == 3
    assert delta("payreports_reports_running") == 1
    assert _value(after, "payreports_reports_oldest_pending_age_seconds") > 0

    assert delta("payreports_delivery_attempts_total", channel="in_app", outcome="sent") == 2
    assert delta("payreports_delivery_attempts_total", channel="webhook", outcome="failed") == 1

    age = _value(after, "payreports_replication_watermark_age_seconds", table=table)
    assert 7_200 <= age < 7_200 + 600

    # Every series the alert rules use is really exported.
    exported = {name for name, _ in after}
    alerts = yaml.safe_load((REPO_ROOT / "deploy/prometheus/alerts.yml").read_text())
    for group in alerts["groups"]:
        for rule in group["rules"]:
            for series in re.findall(r"payreports_[a-z_]+", rule["expr"]):
                assert series in exported, f"{rule['alert']} uses {series}, not in /metrics"


def test_health_and_readiness(api_server):
    assert httpx.get(f"{api_server.base_url}/healthz").json() == {"ok": True}
    ready = httpx.get(f"{api_server.base_url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "checks": {"postgres": "ok", "storage": "ok"}}


def test_not_ready_when_storage_is_unreachable(postgres, tmp_path):
    # S3 at a port nobody listens on: liveness stays green, readiness says which check failed.
    proc, base_url = start_api({"PAYREPORTS_STORAGE_BACKEND": "s3",
                                "PAYREPORTS_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                                "PAYREPORTS_S3_ACCESS_KEY_ID": "x",
                                "PAYREPORTS_S3_SECRET_ACCESS_KEY": "y"},
                               str(tmp_path / "api.log"))
    try:
        assert httpx.get(f"{base_url}/healthz").status_code == 200
        response = httpx.get(f"{base_url}/readyz", timeout=120)
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert body["checks"]["postgres"] == "ok"
        assert body["checks"]["storage"].startswith("error:")
    finally:
        stop_api(proc)
