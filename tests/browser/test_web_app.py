"""The finance team's web app in a real browser: sign in, request, watch, download, schedule,
notifications, roles, account isolation and the embedded reports view."""

from __future__ import annotations

import hashlib
import re
import time
from urllib.parse import urlencode

import httpx
import pytest

from exports.requests import store
from tests.browser.conftest import PASSWORD, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# Inside the demo platform's data (60 days before 2026-11-01).
PERIOD = ("2026-10-01", "2026-10-31")
COMPLETE_TIMEOUT_MS = 90_000


def _request_report(page, prefix: str, type_title: str, fmt: str) -> str:
    page.goto(prefix + "/new" if "token=" not in prefix else prefix)
    page.get_by_role("radio", name=re.compile(f"^{re.escape(type_title)}")).check()
    page.get_by_label("Custom dates").check()
    page.get_by_label("From (first day)").wait_for()  # the period fields are swapped in
    page.get_by_label("From (first day)").fill(PERIOD[0])
    page.get_by_label("To (last day, included)").fill(PERIOD[1])
    page.get_by_label("File format").select_option(fmt)
    page.get_by_role("button", name="Request report").click()
    page.wait_for_url(re.compile(r".*/reports/rpt_[A-Za-z0-9]+"))
    return page.url.split("/reports/")[1].split("?")[0]


def _wait_completed(page) -> None:
    page.locator("#report-status .pill.completed").wait_for(timeout=COMPLETE_TIMEOUT_MS)


def test_sign_in_request_watch_download(browser, web_app, shoot):
    context = browser.new_context(base_url=web_app.base_url, accept_downloads=True)
    page = context.new_page()
    page.goto("/reports")
    assert "/login" in page.url  # signed out: sent to sign in
    page.get_by_label("Email").fill(web_app.users["admin"])
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("That email and password do not match")
    shoot(page, "login")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/reports")
    cookie = next(c for c in context.cookies() if c["name"] == "payreports_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.goto("/reports/new")
    page.get_by_role("radio", name=re.compile("^Balance summary")).check()
    page.get_by_label("Custom dates").check()
    page.get_by_label("From (first day)").wait_for()
    page.get_by_label("From (first day)").fill("2026-10-31")
    page.get_by_label("To (last day, included)").fill("2026-10-01")
    page.get_by_role("button", name="Request report").click()
    # The engine's message, next to the field it names.
    assert "is before the first day" in page.locator("#err-interval_end").inner_text()
    shoot(page, "new_report")

    summary_id = _request_report(page, "/reports", "Balance summary", "csv")
    page.locator("#report-status").wait_for()
    _wait_completed(page)
    page.locator(".barchart svg.bc-bar").first.wait_for()  # figures and a chart in the page
    assert page.locator("table.figures tbody tr").count() > 0
    # Read like the PDF: labels and uppercase currency codes, not the file's codes.
    figures = page.locator("table.figures").inner_text()
    assert "Starting balance" in figures and "USD" in figures
    assert "starting_balance" not in figures and "usd" not in figures.split()
    shoot(page, "report_summary")
    page.get_by_role("link", name="Run again").click()  # the same request, ready to send again
    assert page.get_by_role("radio", name=re.compile("^Balance summary")).is_checked()
    assert page.get_by_label("From (first day)").input_value() == PERIOD[0]
    assert page.get_by_label("To (last day, included)").input_value() == PERIOD[1]

    itemized_id = _request_report(page, "/reports", "Balance change from activity (itemized)", "csv")
    _wait_completed(page)
    row = store.get(itemized_id, web_app.account_a, None)
    assert page.locator("#sha256").inner_text() == row["sha256"]
    with page.expect_download() as info:
        page.locator("#download").click()
    content = open(info.value.path(), "rb").read()
    assert hashlib.sha256(content).hexdigest() == row["sha256"] and len(content) == row["file_size_bytes"]
    shoot(page, "report_itemized")

    page.goto("/reports")
    for report_id in (summary_id, itemized_id):
        assert page.locator(f"#row-{report_id}").get_attribute("data-status") == "completed"
    page.get_by_label("Type").select_option("balance.summary")
    page.get_by_role("button", name="Apply").click()
    assert page.locator(f"#row-{summary_id}").count() == 1 and page.locator(f"#row-{itemized_id}").count() == 0
    page.goto("/reports")
    shoot(page, "reports")
    context.close()


def test_cancel_a_waiting_report(browser, web_app, report_worker):
    page = sign_in(browser, web_app, "analyst")
    with report_worker.paused():
        report_id = _request_report(page, "/reports", "Payments (itemized)", "xlsx")
        assert page.locator("#report-status .pill.pending").count() == 1
        page.get_by_role("button", name="Cancel").click()
        page.locator("#report-status .pill.canceled").wait_for()
    assert store.get(report_id, web_app.account_a, None)["status"] == "canceled"
    assert page.get_by_role("button", name="Cancel").count() == 0
    assert page.get_by_role("link", name="Run again").count() == 1
    page.context.close()


def test_schedule_shows_its_next_runs(browser, web_app, shoot):
    page = sign_in(browser, web_app, "admin")
    page.goto("/schedules/new")
    page.get_by_label("Name").fill("Monthly balance summary")
    page.get_by_label("Runs").select_option("monthly")
    page.get_by_label("At (local time)").fill("06:00")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Email the report to").fill("finance@example.com, not-an-address")
    # The schedule in words and its next runs, while it is being set up.
    page.get_by_text("Every month on the 1st at 06:00 Europe/Berlin").wait_for()
    shoot(page, "schedule_new")
    page.get_by_role("button", name="Create schedule").click()
    assert "not-an-address" in page.locator("#err-email_recipients").inner_text()
    page.get_by_label("Email the report to").fill("finance@example.com")
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url(re.compile(r".*/schedules/rtpl_\w+"))
    assert page.locator("#schedule-text").inner_text() == "Every month on the 1st at 06:00 Europe/Berlin"
    runs = page.locator("#next-runs li").all_inner_texts()
    assert len(runs) == 5 and all(r.endswith("06:00 Europe/Berlin") and " 01 " in r for r in runs), runs
    shoot(page, "schedule")
    page.get_by_role("button", name="Pause").click()
    assert "no runs are due" in page.inner_text("main")
    page.get_by_role("button", name="Resume").click()
    assert page.locator("#next-runs li").count() == 5
    page.goto("/schedules")
    shoot(page, "schedules")
    page.context.close()


def test_read_a_notification(browser, web_app, shoot):
    page = sign_in(browser, web_app, "admin")
    page.goto("/notifications")
    badge = page.locator(".mainnav .badge")
    before = int(badge.inner_text())
    assert before >= 1 and page.locator(".note.unread").count() == before, page.inner_text("main")
    shoot(page, "notifications")
    page.locator(".note.unread").first.get_by_role("button", name=re.compile("^Read")).click()
    page.wait_for_url(re.compile(r".*/reports/rpt_\w+"))
    after = page.locator(".mainnav .badge")
    assert (after.count() == 0 and before == 1) or int(after.inner_text()) == before - 1
    page.context.close()


def test_admin_pages_keys_and_scopes(browser, web_app, shoot, create_api_key, webhook_receiver):
    # A report with a webhook whose first delivery fails: the log shows the attempt.
    webhook_receiver.fail_next(1, status=503)
    with httpx.Client(base_url=web_app.base_url,
                      headers={"Authorization": f"Bearer {create_api_key(web_app.account_a)}"}) as api:
        created = api.post("/v1/reports", json={
            "report_type": "fees.summary", "format": "csv", "webhook_url": webhook_receiver.url(),
            "parameters": {"interval_start": PERIOD[0], "interval_end": "2026-11-01"}})
        assert created.status_code == 200, created.text
    deadline = time.monotonic() + 60
    while store.get(created.json()["id"], web_app.account_a, None)["status"] != "completed":
        assert time.monotonic() < deadline, "the webhook report did not complete"
        time.sleep(0.5)
    page = sign_in(browser, web_app, "admin")
    page.goto("/webhooks")
    assert webhook_receiver.url() in page.inner_text("main")
    assert "failed · HTTP 503" in page.locator("ol.attempts").first.inner_text()
    page.get_by_role("button", name="Reveal").click()
    first = page.locator("#secret-value").inner_text()
    assert first.startswith("whsec_")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate").click()
    page.get_by_text("New secret").wait_for()
    assert page.locator("#secret-value").inner_text() not in (first, "")
    shoot(page, "webhooks")
    page.goto("/keys")
    page.get_by_label("Name").fill("read-only sync")
    page.get_by_label("Restricted — only the scopes ticked below").check()
    page.get_by_label("reports:read").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").inner_text()
    shoot(page, "keys")
    with httpx.Client(base_url=web_app.base_url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert api.get("/v1/reports").status_code == 200
        denied = api.post("/v1/reports", json={"report_type": "balance.summary", "parameters": {
            "interval_start": PERIOD[0], "interval_end": "2026-11-01"}})
        assert denied.status_code == 403 and "reports:write" in denied.json()["error"]["message"]
        assert api.get("/v1/report_templates").status_code == 403
    page.goto("/keys")
    page.once("dialog", lambda dialog: dialog.accept())  # revoking asks first
    page.get_by_role("button", name=re.compile("^Revoke")).first.click()
    page.get_by_text("Revoked").first.wait_for()
    with httpx.Client(base_url=web_app.base_url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert api.get("/v1/reports").status_code == 401
    page.context.close()


def test_analyst_cannot_manage_keys_and_viewer_cannot_request(browser, web_app, shoot):
    analyst = sign_in(browser, web_app, "analyst")
    assert analyst.locator(".mainnav a", has_text="API keys").count() == 0
    response = analyst.goto("/keys")
    assert response.status == 403 and "cannot manage API keys" in analyst.inner_text("main")
    shoot(analyst, "forbidden")
    assert analyst.goto("/reports/new").status == 200
    analyst.context.close()

    viewer = sign_in(browser, web_app, "viewer")
    assert viewer.get_by_role("link", name="New report").count() == 0
    assert viewer.goto("/reports/new").status == 403
    # Not even a hand-made POST with the viewer's own valid CSRF token.
    viewer.goto("/notifications")
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    posted = viewer.request.post("/reports/new", form={
        "csrf_token": token, "report_type": "balance.summary", "period": "custom",
        "interval_start": PERIOD[0], "interval_end": PERIOD[1], "format": "csv"})
    assert posted.status == 403
    # A viewer downloads.
    viewer.goto("/reports")
    assert viewer.get_by_role("link", name=re.compile("^Download")).count() >= 1
    viewer.context.close()


def test_accounts_never_see_each_other(browser, web_app):
    theirs = store.list_requests(web_app.account_a, limit=5)[0]
    assert theirs
    report_id = theirs[0]["id"]
    page = sign_in(browser, web_app, "other")
    assert page.locator(f"#row-{report_id}").count() == 0
    assert report_id not in page.content()
    for path in (f"/reports/{report_id}", f"/reports/{report_id}/download",
                 f"/reports/new?again={report_id}"):
        response = page.goto(path)
        assert response.status == 404, path
        assert web_app.account_a not in page.content()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert page.request.post(f"/reports/{report_id}/cancel", form={"csrf_token": token}).status == 404
    from exports.delivery import notifications
    from exports.scheduling import templates

    note = notifications.list_notifications(web_app.account_a, limit=1, unread_only=True)[0]
    assert page.request.post(f"/notifications/{note['id']}/read", form={"csrf_token": token}).status == 404
    assert notifications.list_notifications(web_app.account_a, limit=1, unread_only=True)[0]["id"] == note["id"]
    schedule = templates.list_templates(web_app.account_a)[0]
    assert page.goto(f"/schedules/{schedule['id']}").status == 404
    assert page.request.post(f"/schedules/{schedule['id']}/pause", form={"csrf_token": token}).status == 404
    assert templates.get_template(schedule["id"], web_app.account_a)["schedule_enabled"]
    # A form posted without the session's CSRF token is refused.
    assert page.request.post("/reports/new", form={"report_type": "balance.summary"}).status == 403
    page.context.close()


def test_embedded_session_reaches_only_its_accounts_reports(browser, web_app, create_api_key, shoot):
    key = create_api_key(web_app.account_a)
    with httpx.Client(base_url=web_app.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
        minted = api.post("/v1/embed_sessions")
        assert minted.status_code == 200, minted.text
        session = minted.json()
        assert 0 < session["expires_at"] - time.time() <= 600
        # The token is not an API key.
        assert httpx.get(f"{web_app.base_url}/v1/reports",
                         headers={"Authorization": f"Bearer {session['token']}"}).status_code == 401
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{web_app.platform_url}/dashboard?" + urlencode({"src": session["url"]}))
    frame = page.frame_locator("#reports")
    frame.get_by_role("link", name="Report history").wait_for()
    mine = store.list_requests(web_app.account_a, limit=1)[0][0]["id"]
    frame.locator(f"#row-{mine}").wait_for()
    shoot(page, "embed")
    # Request a report from inside the frame (the token carries the session, the form its CSRF).
    frame.get_by_role("link", name="New report").first.click()
    frame.get_by_role("radio", name=re.compile("^Fees summary")).check()
    frame.get_by_label("Custom dates").check()
    frame.get_by_label("From (first day)").fill(PERIOD[0])
    frame.get_by_label("To (last day, included)").fill(PERIOD[1])
    shoot(page, "embed_new_report")
    frame.get_by_role("button", name="Request report").click()
    frame.locator("#report-status .pill.completed").wait_for(timeout=COMPLETE_TIMEOUT_MS)
    embedded_id = page.frames[1].url.split("/embed/reports/")[1].split("?")[0]
    assert store.get(embedded_id, web_app.account_a, None)["requested_by"] == f"embed:{web_app.account_a}"
    # Requests from inside the frame, with the embed token.
    embedded = browser.new_context(base_url=web_app.base_url)
    probe = embedded.new_page()
    response = probe.goto(session["url"])
    assert web_app.platform_url in response.headers["content-security-policy"]
    others = store.list_requests(web_app.account_b, limit=1)[0]
    if others:
        assert probe.goto(f"/embed/reports/{others[0]['id']}?token={session['token']}").status == 404
    # Nothing outside /embed/reports accepts the session.
    for path in ("/reports", "/keys", "/schedules", "/notifications"):
        probe.goto(f"{path}?token={session['token']}")
        assert "/login" in probe.url, path
    assert probe.goto("/embed/reports?token=forged").status == 401
    # A page of the app itself refuses to be framed.
    assert "frame-ancestors 'none'" in probe.request.get("/login").headers["content-security-policy"]
    embedded.close()
    context.close()


def test_web_form_emails_the_report(browser, web_app, smtp_server, shoot):
    """Delivery set in the form: checked like the API (the message next to the field), then the
    report reaches the SMTP catcher, named by its title in the email and the notification."""
    address = f"finance-{int(time.time())}@example.com"
    page = sign_in(browser, web_app, "analyst")
    page.goto("/reports/new")
    page.get_by_role("radio", name=re.compile("^Fees summary")).check()
    page.get_by_label("Custom dates").check()
    page.get_by_label("From (first day)").wait_for()
    page.get_by_label("From (first day)").fill(PERIOD[0])
    page.get_by_label("To (last day, included)").fill(PERIOD[1])
    page.get_by_label("Email the report to").fill(f"{address}, not-an-address")
    page.get_by_role("button", name="Request report").click()
    assert "not-an-address" in page.locator("#err-email_to").inner_text()
    assert page.get_by_label("Email the report to").get_attribute("aria-invalid") == "true"
    page.get_by_label("Email the report to").fill(address)
    shoot(page, "new_report_delivery")
    page.get_by_role("button", name="Request report").click()
    page.wait_for_url(re.compile(r".*/reports/rpt_[A-Za-z0-9]+"))
    _wait_completed(page)
    deadline = time.monotonic() + 30
    while not smtp_server.messages_to(address):
        assert time.monotonic() < deadline, "no email reached the SMTP catcher"
        time.sleep(0.3)
    [message] = smtp_server.messages_to(address)
    assert message["Subject"] == "Your report is ready: Fees summary"
    page.reload()
    assert address in page.inner_text("main") and "sent" in page.locator("table", has_text=address).inner_text()
    page.goto("/notifications")
    newest = page.locator(".note").first
    assert newest.locator(".t").inner_text().endswith("Report ready: Fees summary")
    assert "01 Oct 2026 – 31 Oct 2026" in newest.locator(".b").inner_text()
    assert "fees.summary" not in page.inner_text("main")
    page.context.close()


def test_admin_changes_a_role_and_disables_a_user(browser, web_app, shoot):
    email = f"pat-{int(time.time())}@{web_app.account_a.replace('_', '-')}.example"
    admin = sign_in(browser, web_app, "admin")
    admin.goto("/users")
    admin.get_by_label("Email").fill(email)
    admin.get_by_label("Role", exact=True).select_option("viewer")
    admin.get_by_label("Initial password").fill(PASSWORD)
    admin.get_by_role("button", name="Add user").click()
    row = admin.locator("table.users tr", has_text=email)
    assert row.get_attribute("data-role") == "viewer"

    pat = sign_in(browser, web_app, email)
    assert pat.get_by_role("link", name="New report").count() == 0
    assert pat.goto("/reports/new").status == 403

    # A role change takes effect at the user's next request, without signing in again.
    admin.get_by_label(f"Role of {email}").select_option("analyst")
    admin.get_by_role("button", name=f"Change role of {email}").click()
    assert admin.locator("table.users tr", has_text=email).get_attribute("data-role") == "analyst"
    assert pat.goto("/reports/new").status == 200
    assert pat.get_by_role("link", name="New report").count() >= 1

    # Disabling ends the open session at once and refuses the next sign-in, saying why.
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name=f"Disable {email}").click()
    assert admin.locator("table.users tr", has_text=email).get_attribute("data-status") == "disabled"
    pat.goto("/reports")
    assert "/login" in pat.url and "session has ended" in pat.inner_text("main")
    pat.get_by_label("Email").fill(email)
    pat.get_by_label("Password").fill(PASSWORD)
    pat.get_by_role("button", name="Sign in").click()
    assert "was disabled" in pat.get_by_role("alert").inner_text()
    shoot(pat, "login_disabled")
    assert "/login" in pat.url

    # The only admin cannot demote themselves: the reason is next to their own row.
    me = web_app.users["admin"]
    admin.get_by_label(f"Role of {me}").select_option("viewer")
    admin.get_by_role("button", name=f"Change role of {me}").click()
    assert "only active admin" in admin.locator("table.users tr[data-role=admin]", has_text=me).get_by_role("alert").inner_text()
    # Who changed what, newest first.
    changes = admin.locator("#user-changes tbody tr").all_inner_texts()[:3]
    assert "disabled" in changes[0] and "viewer → analyst" in changes[1] and "added as viewer" in changes[2]
    assert all(me in line for line in changes), changes
    shoot(admin, "users")

    admin.get_by_role("button", name=f"Enable {email}").click()
    pat.get_by_label("Password").fill(PASSWORD)
    pat.get_by_role("button", name="Sign in").click()
    pat.wait_for_url("**/reports")
    pat.context.close()
    admin.context.close()
