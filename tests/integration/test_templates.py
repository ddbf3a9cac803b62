"""Report templates and the scheduler against the real (embedded) Postgres, with a controlled clock:
exactly one request per due time, catch-up policies, duplicate and concurrent ticks, DST and
relative ranges in the template's timezone, and validation errors naming the field."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from exports import db
from exports.errors import InvalidParameter
from exports.scheduling import schedule_due_reports
from exports.scheduling.templates import create_template, get_template, update_template
from exports.settings import Settings

pytestmark = pytest.mark.integration

# A report type the catalog has; the scheduler itself never looks at it.
REPORT_TYPE = "balance_change_from_activity.itemized"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def new_account() -> str:
    return "acct_sched" + secrets.token_hex(4)


def template(settings: Settings, account: str, *, created: datetime, cron: str = "0 6 * * *",
             timezone: str = "UTC", catch_up: str = "latest", relative_range: str | None = "yesterday",
             **extra) -> dict:
    body = {"name": "Daily balance", "report_type": REPORT_TYPE, "format": "csv",
            "schedule_cron": cron, "timezone": timezone, "catch_up": catch_up,
            "relative_range": relative_range, **extra}
    return create_template(account, body, settings=settings, now=created)


def tick(settings: Settings, template_id: str, now: datetime) -> list[str]:
    """One scheduler tick; the ids it created for this template (other tests' templates share
    the session database and may come due at the same clock)."""
    created = schedule_due_reports(settings, now=now)
    mine = {r["id"] for r in scheduled_rows(settings, template_id)}
    return [request_id for request_id in created if request_id in mine]


def scheduled_rows(settings: Settings, template_id: str) -> list[dict]:
    with db.connect("app", settings, dict_rows=True) as conn:
        return conn.execute(
            "SELECT id, scheduled_for, parameters, source, priority, status, account_id"
            " FROM report_requests WHERE template_id = %s ORDER BY scheduled_for",
            (template_id,)).fetchall()


def test_daily_template_creates_exactly_one_request_per_due_time(postgres):
    account = new_account()
    tpl = template(postgres, account, created=utc(2026, 5, 1, 0, 0))
    assert tpl["next_run_at"] == utc(2026, 5, 1, 6)

    assert tick(postgres, tpl["id"], utc(2026, 5, 1, 5, 59)) == []
    first = tick(postgres, tpl["id"], utc(2026, 5, 1, 6, 0))
    assert len(first) == 1
    assert tick(postgres, tpl["id"], utc(2026, 5, 1, 6, 0)) == []  # same tick again
    assert tick(postgres, tpl["id"], utc(2026, 5, 1, 17, 30)) == []
    second = tick(postgres, tpl["id"], utc(2026, 5, 2, 6, 0, 30))
    assert len(second) == 1

    rows = scheduled_rows(postgres, tpl["id"])
    assert [r["id"] for r in rows] == first + second
    assert [r["scheduled_for"] for r in rows] == [utc(2026, 5, 1, 6), utc(2026, 5, 2, 6)]
    assert {(r["source"], r["priority"], r["status"], r["account_id"]) for r in rows} == {
        ("schedule", 0, "pending", account)}
    # parameters = template defaults + the absolute interval of 'yesterday' at the due time
    assert rows[0]["parameters"]["interval_start"] == "2026-04-30T00:00:00+00:00"
    assert rows[0]["parameters"]["interval_end"] == "2026-05-01T00:00:00+00:00"
    stored = get_template(tpl["id"], account, settings=postgres)
    assert stored["last_scheduled_for"] == utc(2026, 5, 2, 6)
    assert stored["next_run_at"] == utc(2026, 5, 3, 6)


@pytest.mark.parametrize(("catch_up", "expected_due"), [
    ("all", [utc(2026, 6, 2, 6), utc(2026, 6, 3, 6), utc(2026, 6, 4, 6)]),
    ("latest", [utc(2026, 6, 4, 6)]),
])
def test_catch_up_after_downtime(postgres, catch_up, expected_due):
    tpl = template(postgres, new_account(), created=utc(2026, 6, 1, 12), catch_up=catch_up)
    # The scheduler was down for three days: the clock jumps from creation to June 4th, 12:00.
    created = tick(postgres, tpl["id"], utc(2026, 6, 4, 12))
    rows = scheduled_rows(postgres, tpl["id"])
    assert [r["scheduled_for"] for r in rows] == expected_due
    assert sorted(created) == sorted(r["id"] for r in rows)
    assert tick(postgres, tpl["id"], utc(2026, 6, 4, 12)) == []


def test_concurrent_schedulers_and_a_lost_bookmark_create_no_duplicates(postgres):
    tpl = template(postgres, new_account(), created=utc(2026, 7, 1, 12), catch_up="all")
    now = utc(2026, 7, 4, 12)
    barrier = threading.Barrier(2)
    results: list[list[str]] = []

    def concurrent_tick() -> None:
        barrier.wait()
        results.append(tick(postgres, tpl["id"], now))

    threads = [threading.Thread(target=concurrent_tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # However the two interleave: three due times, three requests, each created by one of them.
    created = [request_id for result in results for request_id in result]
    assert len(created) == len(set(created)) == 3
    assert len(scheduled_rows(postgres, tpl["id"])) == 3

    # A restart from a stale bookmark (e.g. a restored backup) re-walks the same due times:
    # the unique (template_id, scheduled_for) keeps it harmless.
    with db.connect("app", postgres) as conn:
        conn.execute("UPDATE report_templates SET last_scheduled_for = NULL, next_run_at = %s"
                     " WHERE id = %s", (utc(2026, 7, 2, 6), tpl["id"]))
    assert tick(postgres, tpl["id"], now) == []
    assert len(scheduled_rows(postgres, tpl["id"])) == 3


@pytest.mark.parametrize(("created", "now", "expected"), [
    # DST ends Sunday 2026-10-25: 06:00 Berlin is 04:00 UTC before, 05:00 UTC after.
    (utc(2026, 10, 23, 12), utc(2026, 10, 26, 12), [
        (utc(2026, 10, 24, 4), utc(2026, 10, 22, 22), utc(2026, 10, 23, 22)),
        (utc(2026, 10, 25, 5), utc(2026, 10, 23, 22), utc(2026, 10, 24, 22)),
        (utc(2026, 10, 26, 5), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),  # a 25-hour day
    ]),
    # DST starts Sunday 2026-03-29: 05:00 UTC before, 04:00 UTC after.
    (utc(2026, 3, 27, 12), utc(2026, 3, 30, 12), [
        (utc(2026, 3, 28, 5), utc(2026, 3, 26, 23), utc(2026, 3, 27, 23)),
        (utc(2026, 3, 29, 4), utc(2026, 3, 27, 23), utc(2026, 3, 28, 23)),
        (utc(2026, 3, 30, 4), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),  # a 23-hour day
    ]),
])
def test_berlin_six_am_across_dst_changes(postgres, created, now, expected):
    tpl = template(postgres, new_account(), created=created, timezone="Europe/Berlin", catch_up="all")
    tick(postgres, tpl["id"], now)
    rows = scheduled_rows(postgres, tpl["id"])
    assert [(r["scheduled_for"], datetime.fromisoformat(r["parameters"]["interval_start"]),
             datetime.fromisoformat(r["parameters"]["interval_end"])) for r in rows] == expected
    assert {r["parameters"]["timezone"] for r in rows} == {"Europe/Berlin"}


def test_last_month_in_tokyo(postgres):
    tpl = template(postgres, new_account(), created=utc(2026, 1, 15), cron="0 6 1 * *",
                   timezone="Asia/Tokyo", catch_up="all", relative_range="last_month")
    tick(postgres, tpl["id"], utc(2026, 3, 1))  # 09:00 on March 1st in Tokyo
    rows = scheduled_rows(postgres, tpl["id"])
    assert [(r["scheduled_for"], r["parameters"]["interval_start"], r["parameters"]["interval_end"])
            for r in rows] == [
        # 06:00 JST on Feb 1st = 21:00 UTC on Jan 31st; January in Tokyo starts 15:00 UTC the day before
        (utc(2026, 1, 31, 21), "2025-12-31T15:00:00+00:00", "2026-01-31T15:00:00+00:00"),
        (utc(2026, 2, 28, 21), "2026-01-31T15:00:00+00:00", "2026-02-28T15:00:00+00:00"),
    ]


def test_disabled_and_rescheduled_templates(postgres):
    account = new_account()
    tpl = template(postgres, account, created=utc(2026, 8, 1), catch_up="all")
    update_template(tpl["id"], account, {"schedule_enabled": False}, settings=postgres,
                    now=utc(2026, 8, 1, 1))
    assert tick(postgres, tpl["id"], utc(2026, 8, 3)) == []
    # Re-enabling owes nothing for the paused days: the next request is the next due time.
    update_template(tpl["id"], account, {"schedule_enabled": True, "schedule_cron": "0 7 * * *"},
                    settings=postgres, now=utc(2026, 8, 3))
    assert len(tick(postgres, tpl["id"], utc(2026, 8, 3, 7))) == 1
    assert [r["scheduled_for"] for r in scheduled_rows(postgres, tpl["id"])] == [utc(2026, 8, 3, 7)]


@pytest.mark.parametrize(("field", "value", "param"), [
    ("schedule_cron", "0 25 * * *", "schedule_cron"),
    ("schedule_cron", "daily at six", "schedule_cron"),
    ("timezone", "Europe/Berlinn", "timezone"),
    ("email_recipients", ["ok@example.com", "not-an-address"], "email_recipients[1]"),
    ("webhook_url", "ftp://example.com/hook", "webhook_url"),
    ("catch_up", "some", "catch_up"),
    ("relative_range", "last_fortnight", "relative_range"),
    ("report_type", "balance.sideways", "report_type"),
    ("parameters", {"colour": "blue"}, "parameters.colour"),
])
def test_invalid_template_fields_are_named(postgres, field, value, param):
    with pytest.raises(InvalidParameter) as error:
        template(postgres, new_account(), created=utc(2026, 1, 1), **{field: value})
    assert error.value.param == param


def test_production_requires_https_webhooks(postgres):
    production = postgres.model_copy(update={"environment": "production"})
    with pytest.raises(InvalidParameter) as error:
        template(production, new_account(), created=utc(2026, 1, 1), webhook_url="http://example.com/h")
    assert error.value.param == "webhook_url"
    ok = template(production, new_account(), created=utc(2026, 1, 1), webhook_url="https://example.com/h")
    assert ok["webhook_url"] == "https://example.com/h"


# ------------------------------------------------------------------------------ through the API

def template_body(**overrides) -> dict:
    return {"name": "Daily activity", "report_type": REPORT_TYPE, "format": "csv",
            "schedule_cron": "0 6 * * *", "timezone": "Europe/Berlin", "relative_range": "yesterday",
            "email_recipients": ["finance@example.com"], **overrides}


@pytest.mark.parametrize(("overrides", "param"), [
    ({"schedule_cron": "0 6 * * * * *"}, "schedule_cron"),
    ({"timezone": "Berlin"}, "timezone"),
    ({"email_recipients": ["finance@example.com", "finance at example"]}, "email_recipients[1]"),
    ({"parameters": {"interval_start": "2026-01-01"}}, "parameters.interval_start"),
])
def test_api_rejects_bad_fields_with_400_naming_them(api_server, create_api_key, overrides, param):
    with api_server.client(create_api_key(new_account())) as client:
        response = client.post("/v1/report_templates", json=template_body(**overrides))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_api_crud_is_account_scoped(api_server, create_api_key):
    owner, other = create_api_key(new_account()), create_api_key(new_account())
    with api_server.client(owner) as client:
        created = client.post("/v1/report_templates", json=template_body())
        assert created.status_code == 200, created.text
        template_id = created.json()["id"]
        assert created.json()["next_run_at"] is not None
        assert [t["id"] for t in client.get("/v1/report_templates").json()["data"]] == [template_id]
        updated = client.post(f"/v1/report_templates/{template_id}", json={"catch_up": "all"})
        assert updated.json()["catch_up"] == "all"
    with api_server.client(other) as client:
        assert client.get(f"/v1/report_templates/{template_id}").status_code == 404
        assert client.post(f"/v1/report_templates/{template_id}", json={"name": "x"}).status_code == 404
        assert client.delete(f"/v1/report_templates/{template_id}").status_code == 404
        assert client.get("/v1/report_templates").json()["data"] == []
    with api_server.client(owner) as client:
        assert client.delete(f"/v1/report_templates/{template_id}").json()["deleted"] is True
        assert client.get(f"/v1/report_templates/{template_id}").status_code == 404


def test_production_api_rejects_plain_http_webhooks(postgres, create_api_key, tmp_path):
    from tests.fixtures.api import production_env, start_api, stop_api

    proc, base_url = start_api(production_env(postgres), str(tmp_path / "api.log"))
    try:
        headers = {"Authorization": f"Bearer {create_api_key(new_account())}"}
        response = httpx.post(f"{base_url}/v1/report_templates", headers=headers, timeout=30,
                              json=template_body(webhook_url="http://hooks.example.com/payreports"))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "webhook_url"
        response = httpx.post(f"{base_url}/v1/report_templates", headers=headers, timeout=30,
                              json=template_body(webhook_url="https://hooks.example.com/payreports"))
        assert response.status_code == 200, response.text
    finally:
        stop_api(proc)


def test_dagster_sensor_ticks_the_scheduler(postgres):
    import dagster as dg

    from orchestration.defs.schedules.sensors import report_template_scheduler

    created_at = datetime.now(UTC) - timedelta(days=2)
    tpl = template(postgres, new_account(), created=created_at, cron="0 * * * *", catch_up="latest")
    result = report_template_scheduler(dg.build_sensor_context())
    assert "created" in str(result.skip_message)
    [row] = scheduled_rows(postgres, tpl["id"])
    assert row["scheduled_for"] == datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
