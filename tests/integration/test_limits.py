"""Per-account limits that parallel requests and schedules must not get around: the pending cap
under 30 parallel POSTs (exactly the cap accepted), the template cap, the minimum schedule
interval, and scheduled reports deferred (not dropped, visibly) while the account is at its cap."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from exports import db
from exports.requests import store
from exports.scheduling import schedule_due_reports
from exports.scheduling.templates import create_template, get_template, to_api
from tests.fixtures.api import RunningApi, start_api, stop_api

pytestmark = pytest.mark.integration

PENDING_CAP = 5
TEMPLATE_CAP = 3
RATE_BURST = 40  # creations per account before the token bucket (0.01/s refill) says 429
REPORT_BODY = {"report_type": "balance.summary.1", "format": "csv",
               "parameters": {"interval_start": 1714521600, "interval_end": 1717200000}}
TEMPLATE_BODY = {"name": "Daily", "report_type": "balance_change_from_activity.itemized",
                 "format": "csv", "schedule_cron": "0 6 * * *", "relative_range": "yesterday"}


def new_account() -> str:
    return "acct_lim" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def limited_api(postgres, tmp_path_factory) -> Iterator[RunningApi]:
    log_path = str(tmp_path_factory.mktemp("limited-api") / "uvicorn.log")
    proc, base_url = start_api({"PAYREPORTS_MAX_PENDING_PER_ACCOUNT": str(PENDING_CAP),
                                "PAYREPORTS_MAX_TEMPLATES_PER_ACCOUNT": str(TEMPLATE_CAP),
                                "PAYREPORTS_API_RATE_BURST": str(RATE_BURST),
                                "PAYREPORTS_API_RATE_PER_SECOND": "0.01"}, log_path)
    yield RunningApi(base_url, log_path)
    stop_api(proc)


def parallel_posts(api: RunningApi, key: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    """All requests released at once (a barrier), each on its own connection."""
    barrier = threading.Barrier(len(bodies))
    responses: list[httpx.Response | None] = [None] * len(bodies)

    def post(index: int) -> None:
        with api.client(key) as client:
            barrier.wait()
            responses[index] = client.post(path, json=bodies[index])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


def test_pending_cap_holds_under_30_parallel_creates(limited_api, create_api_key):
    key = create_api_key(account := new_account())
    responses = parallel_posts(limited_api, key, "/v1/reports", [REPORT_BODY] * 30)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * PENDING_CAP + [429] * (30 - PENDING_CAP), statuses
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limit_error" and "Retry-After" in refused.headers
    rows, _ = store.list_requests(account, limit=100)
    assert len(rows) == PENDING_CAP


def test_idempotent_replay_is_returned_at_the_cap(limited_api, create_api_key):
    key = create_api_key(new_account())
    with limited_api.client(key) as client:
        first = client.post("/v1/reports", json=REPORT_BODY, headers={"Idempotency-Key": "k1"})
        for _ in range(PENDING_CAP - 1):
            assert client.post("/v1/reports", json=REPORT_BODY).status_code == 200
        assert client.post("/v1/reports", json=REPORT_BODY).status_code == 429
        replay = client.post("/v1/reports", json=REPORT_BODY, headers={"Idempotency-Key": "k1"})
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]


def test_template_cap_holds_under_parallel_creates(limited_api, create_api_key):
    key = create_api_key(new_account())
    responses = parallel_posts(limited_api, key, "/v1/report_templates", [TEMPLATE_BODY] * 10)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * TEMPLATE_CAP + [409] * (10 - TEMPLATE_CAP), statuses
    assert next(r for r in responses if r.status_code == 409).json()["error"]["code"] == "limit_reached"
    with limited_api.client(key) as client:
        template_id = client.get("/v1/report_templates").json()["data"][0]["id"]
        assert client.delete(f"/v1/report_templates/{template_id}").status_code == 200
        assert client.post("/v1/report_templates", json=TEMPLATE_BODY).status_code == 200


def test_template_creation_spends_the_accounts_rate_budget(limited_api, create_api_key):
    with limited_api.client(create_api_key(new_account())) as client:
        statuses = [client.post("/v1/report_templates", json=TEMPLATE_BODY).status_code
                    for _ in range(RATE_BURST + 1)]
    assert statuses == [200] * TEMPLATE_CAP + [409] * (RATE_BURST - TEMPLATE_CAP) + [429]


@pytest.mark.parametrize("cron", ["* * * * *", "*/5 * * * *", "0,30 * * * *", "0,59 6 * * *"])
def test_too_frequent_schedules_are_400_naming_the_field(api_server, create_api_key, cron):
    with api_server.client(create_api_key(new_account())) as client:
        response = client.post("/v1/report_templates", json={**TEMPLATE_BODY, "schedule_cron": cron})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "schedule_cron"
        ok = client.post("/v1/report_templates", json={**TEMPLATE_BODY, "schedule_cron": "0 * * * *"})
        assert ok.status_code == 200, ok.text
        updated = client.patch(f"/v1/report_templates/{ok.json()['id']}", json={"schedule_cron": cron})
        assert updated.status_code == 400 and updated.json()["error"]["param"] == "schedule_cron"


def test_scheduled_reports_wait_for_room_under_the_pending_cap(postgres):
    settings = postgres.model_copy(update={"max_pending_per_account": 2,
                                           "schedule_deferral_retry_seconds": 60})
    account = new_account()
    created_at = datetime(2026, 5, 1, tzinfo=UTC)
    template = create_template(account, {**TEMPLATE_BODY, "catch_up": "all"}, settings=settings,
                               now=created_at)
    busy = [store.create(store.NewRequest(account, "balance.summary.1", {}, "csv"), settings)[0]
            for _ in range(2)]

    due = datetime(2026, 5, 1, 6, tzinfo=UTC)
    tick = due + timedelta(minutes=1)
    assert _mine(schedule_due_reports(settings, now=tick), template["id"], settings) == []
    shown = to_api(get_template(template["id"], account, settings=settings))
    assert shown["deferred_reason"].startswith("deferred: account has 2 pending reports")
    assert shown["next_run_at"] == int((tick + timedelta(seconds=60)).timestamp())

    # Still full at the retry: still deferred, still owed.
    assert _mine(schedule_due_reports(settings, now=tick + timedelta(seconds=61)), template["id"], settings) == []
    store.cancel(busy[0]["id"], account, settings)
    retry = tick + timedelta(seconds=122)
    [created] = _mine(schedule_due_reports(settings, now=retry), template["id"], settings)
    with db.connect("app", settings, dict_rows=True) as conn:
        row = conn.execute("SELECT scheduled_for, status FROM report_requests WHERE id = %s",
                           (created,)).fetchone()
    assert (row["scheduled_for"], row["status"]) == (due, "pending")  # the original due time
    shown = to_api(get_template(template["id"], account, settings=settings))
    assert shown["deferred_reason"] is None
    assert shown["next_run_at"] == int((due + timedelta(days=1)).timestamp())


def _mine(created: list[str], template_id: str, settings) -> list[str]:
    with db.connect("app", settings) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM report_requests WHERE template_id = %s",
                                          (template_id,))}
    return [i for i in created if i in ids]
