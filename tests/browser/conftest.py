"""Browser tests: the web app in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), against the real API process, the session's embedded Postgres and the demo platform.

Reports are processed the way the Dagster job does it, by `exports.requests.processing.
process_request`, called here from a background worker thread for every pending request (the
daemon would add ~30 s per run start on the shared machine). Screenshots of every page at
1440x900 and 390x844 go to $PAYREPORTS_WEB_SCREENSHOTS (default: the test's temp dir).
"""

from __future__ import annotations

import html
import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.fixtures.api import start_api, stop_api

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"


@dataclass
class WebApp:
    base_url: str
    account_a: str
    account_b: str
    users: dict[str, str]  # name -> email
    platform_url: str  # a stand-in for the embedding platform's dashboard (another origin)


class _PlatformDashboard(http.server.BaseHTTPRequestHandler):
    """GET /dashboard?src=<embed url>: a page framing the embedded reports view. Served from
    a real loopback server: Chromium refuses to let a public (or routed) page frame a loopback
    address (Local Network Access checks)."""

    def do_GET(self):  # noqa: N802 — http.server's name
        src = parse_qs(urlparse(self.path).query).get("src", [""])[0]
        body = ('<!doctype html><title>Platform</title><h1 style="font:600 16px sans-serif">'
                'Platform dashboard</h1><iframe id="reports" title="Reports" src="'
                + html.escape(src) + '" style="width:100%;height:780px;border:1px solid #ccc">'
                '</iframe>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def platform_dashboard() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlatformDashboard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # "localhost", not 127.0.0.1: another origin than the app's even if the ports matched.
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()


def _two_accounts(settings) -> tuple[str, str]:
    from exports import db

    with db.connect("source", settings) as conn:
        rows = conn.execute("SELECT account_id FROM payments GROUP BY account_id "
                            "ORDER BY count(*) DESC, account_id LIMIT 2").fetchall()
    return rows[0][0], rows[1][0]


class ReportWorker:
    """Processes the pending requests of the test accounts in a background thread, like the
    Dagster job would (only theirs: other tests of the session leave requests of their own
    accounts waiting); `paused()` holds new requests back (e.g. to cancel one while it waits)."""

    def __init__(self, settings):
        self.settings = settings
        self.accounts: set[str] = set()
        self.running = threading.Event()
        self.running.set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, daemon=True, name="report-worker")

    def _work(self) -> None:
        from exports.requests import store
        from exports.requests.processing import process_request

        while not self.stop.is_set():
            if self.running.is_set():
                for account in list(self.accounts):
                    rows, _ = store.list_requests(account, limit=50, status="pending",
                                                  settings=self.settings)
                    for row in reversed(rows):  # oldest first
                        process_request(row["id"], self.settings, run_id="browser-test-worker")
            self.stop.wait(0.3)

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.running.clear()
        time.sleep(0.5)  # let a pass that already started finish
        try:
            yield
        finally:
            self.running.set()


# Module-scoped: the worker must stop when the browser tests end, or it would go on claiming the
# same accounts' requests from the integration tests that run after them in one session.
@pytest.fixture(scope="module")
def report_worker(demo_platform, smtp_server) -> Iterator[ReportWorker]:
    # Deliveries are sent by the worker: its email goes to the session's SMTP catcher.
    worker = ReportWorker(demo_platform.settings.model_copy(
        update={"smtp_host": smtp_server.host, "smtp_port": smtp_server.port}))
    worker.thread.start()
    yield worker
    worker.stop.set()
    worker.thread.join(timeout=60)


@pytest.fixture(scope="module")
def web_app(demo_platform, report_worker, platform_dashboard, tmp_path_factory) -> Iterator[WebApp]:
    from exports import users

    settings = demo_platform.settings
    account_a, account_b = _two_accounts(settings)
    report_worker.accounts.update((account_a, account_b))
    emails = {}
    for name, account, role in (("admin", account_a, "admin"), ("analyst", account_a, "analyst"),
                                ("viewer", account_a, "viewer"), ("other", account_b, "admin")):
        email = f"{name}@{account.replace('_', '-')}.example"
        users.create_user(account, email, role, PASSWORD, settings=settings)
        emails[name] = email
    log_path = str(tmp_path_factory.mktemp("web-api") / "uvicorn.log")
    proc, base_url = start_api({"PAYREPORTS_EMBED_FRAME_ANCESTORS": f"'self' {platform_dashboard}",
                                "PAYREPORTS_API_RATE_BURST": "40"}, log_path)
    yield WebApp(base_url, account_a, account_b, emails, platform_dashboard)
    stop_api(proc)


# Module-scoped: a sync Playwright left running holds its event loop on the main thread, and
# later tests of the session that drive a browser of their own (the Dagster UI screenshot in
# test_statement_backfill) could not start one.
@pytest.fixture(scope="module")
def browser():
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screens(tmp_path_factory) -> Path:
    target = os.environ.get("PAYREPORTS_WEB_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screens")
    path.mkdir(parents=True, exist_ok=True)
    return path


_ELEMENTS_WIDER_THAN_THE_PAGE = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  const clipped = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 1 && !clipped(el))
    .slice(0, 8).map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                           (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""));
}"""


_CONTROLS_WITHOUT_A_LABEL = """() => [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button")].filter(el => {
  if (el.tagName === "BUTTON") return !(el.innerText.trim() || el.getAttribute("aria-label"));
  return !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby");
}).map(el => el.outerHTML.slice(0, 120))"""


@pytest.fixture
def shoot(screens):
    """shoot(page, name): full-page screenshots at a laptop and a phone viewport, after checking
    that nothing is wider than the page and every form control has a label."""
    def _shoot(page, name: str) -> None:
        for label, size in (("desktop", (1440, 900)), ("mobile", (390, 844))):
            page.set_viewport_size({"width": size[0], "height": size[1]})
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            # Nothing may push the page sideways (wide tables scroll inside their own box).
            wider = page.evaluate(_ELEMENTS_WIDER_THAN_THE_PAGE)
            assert not wider, f"{name} at {size[0]}px: elements wider than the page: {wider}"
            for frame in page.frames:  # every form control can be found by its label
                unlabeled = frame.evaluate(_CONTROLS_WITHOUT_A_LABEL)
                assert not unlabeled, f"{name}: controls without a label: {unlabeled}"
            page.screenshot(path=str(screens / f"web_{name}_{label}.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})

    return _shoot


def sign_in(browser, web_app: WebApp, who: str, password: str = PASSWORD, expect_signed_in: bool = True):
    """A new browser context signed in as web_app.users[who] (or as the email `who`)."""
    context = browser.new_context(base_url=web_app.base_url, accept_downloads=True,
                                  viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(web_app.users.get(who, who))
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if expect_signed_in:
        page.wait_for_url("**/reports")
    return page
