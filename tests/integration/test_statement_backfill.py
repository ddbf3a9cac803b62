"""`payreports ops backfill` is a real Dagster partition backfill of the statements: the daemon
(the repo's dagster.yaml: Postgres storage, queued runs, tag limits) executes its runs, 3 months x
3 accounts yield exactly 9 packs, and running it again adds none. Then the Dagster UI, opened in
headless Chromium, shows the asset's partitions and their status (a screenshot for review)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exports import db
from cli import app
from exports.dagster_home import prepare_dagster_home
from exports.settings import REPO_ROOT
from exports.statements.items import statement_set
from exports.statements.packs import statement_request_id
from exports.statements.periods import months_between
from exports.statements.shards import SHARD_KEYS, shard_of
from tests.fixtures.services import free_port, wait_for_dagster_webserver

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
SCREENSHOT = Path(os.environ.get("PAYREPORTS_SCREENSHOT_DIR", "/work/wt/notes/screens")) / "dagster_statements.png"
runner = CliRunner()


def _statement_rows(settings, account_ids, periods) -> list[dict]:
    ids = [statement_request_id(a, p, item) for a in account_ids for p in periods
           for item in statement_set(settings)]
    with db.connect("app", settings, dict_rows=True) as conn:
        return conn.execute("SELECT * FROM report_requests WHERE id = ANY(%s)", (ids,)).fetchall()


def _count(settings, sql: str, args=()) -> int:
    with db.connect("app", settings) as conn:
        return conn.execute(sql, args).fetchone()[0]


@pytest.fixture()
def statements_daemon(demo_platform, tmp_path):
    """Starts (when called) a dagster-daemon on the project's instance, serving only the
    statements asset; stops it at the end."""
    env = {**os.environ, **prepare_dagster_home(demo_platform.settings)}
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: tests.integration.dagster_statements.definitions\n"
        "      location_name: statements\n"
        f"      working_directory: {REPO_ROOT}\n")
    log_path = tmp_path / "daemon.log"
    started = []

    def start():
        with open(log_path, "wb") as log:
            started.append(subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], cwd=REPO_ROOT, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return started[0]

    yield workspace, env, start, log_path
    for daemon in started:
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)


def _backfill(accounts: list[str], *, wait: bool = True) -> str:
    args = ["ops", "backfill", "--from", "2026-05", "--to", "2026-07"] + (["--wait"] if wait else [])
    for account in accounts:
        args += ["--account", account]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_ops_backfill_renders_each_pack_once_and_the_ui_shows_the_partitions(
        demo_platform, statements_daemon, tmp_path):
    settings = demo_platform.settings
    workspace, env, start_daemon, log_path = statements_daemon
    with db.connect("source", settings) as conn:
        accounts = [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 3")]
    periods = months_between("2026-05", "2026-07")
    items = statement_set(settings)
    done_before = {r["id"] for r in _statement_rows(settings, accounts, periods)}

    # Submitted before the daemon starts, so its first backfill iteration picks it up at once.
    output = _backfill(accounts, wait=False)
    assert f"{3 * len({shard_of(a) for a in accounts})} partition(s)" in output
    backfill_id = output.split()[1].rstrip(":")
    daemon = start_daemon()

    import dagster as dg

    from orchestration.backfills import backfill_status

    with dg.DagsterInstance.get() as instance:
        deadline = time.monotonic() + 400
        while not (state := backfill_status(instance, backfill_id))[1]:
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"backfill still {state[0]}"
            time.sleep(2)
    assert state[0] == "COMPLETED_SUCCESS", log_path.read_text()[-3000:]
    rows = _statement_rows(settings, accounts, periods)
    assert len(rows) == 9 * len(items)  # 3 months x 3 accounts = 9 packs
    assert {r["status"] for r in rows} == {"completed"}, [r["error_message"] for r in rows]
    packs = {(r["account_id"], r["parameters"]["interval_start"]) for r in rows}
    assert len(packs) == 9
    rendered = {r["id"]: r["completed_at"] for r in rows}

    # Only the named accounts: their shards' other accounts got nothing from this backfill.
    with db.connect("source", settings) as conn:
        neighbours = [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id OFFSET 3")
                      if shard_of(r[0]) in {shard_of(a) for a in accounts}]
    assert not {r["id"] for r in _statement_rows(settings, neighbours, periods)} - done_before

    statement_total = _count(settings, "SELECT count(*) FROM report_requests WHERE source = 'statement'")
    deliveries = _count(settings, "SELECT count(*) FROM deliveries WHERE request_id = ANY(%s)",
                        (list(rendered),))
    assert "COMPLETED_SUCCESS" in _backfill(accounts)
    again = _statement_rows(settings, accounts, periods)
    assert {r["id"]: r["completed_at"] for r in again} == rendered  # nothing rendered again
    assert _count(settings, "SELECT count(*) FROM report_requests WHERE source = 'statement'") == statement_total
    assert _count(settings, "SELECT count(*) FROM deliveries WHERE request_id = ANY(%s)",
                  (list(rendered),)) == deliveries

    with dg.DagsterInstance.get() as instance:
        backfills = [b for b in instance.get_backfills() if b.title == "statements 2026-05..2026-07"]
        assert len(backfills) >= 2
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfills[0].backfill_id}))
        assert runs and all(r.tags.get("payreports/source") == "ops-backfill" for r in runs)
        # BackfillPolicy batches partitions: fewer runs than partitions whenever they can share one.
        assert len(runs) <= 3 * len({shard_of(a) for a in accounts})
        status = instance.get_status_by_partition(
            dg.AssetKey("statements"),
            partition_keys=[f"{p.key}|{SHARD_KEYS[shard_of(a)]}" for p in periods for a in accounts],
            partitions_def=__import__("orchestration.defs.statements.partitions",
                                      fromlist=["statement_partitions"]).statement_partitions)
        assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}

        # One failed partition, so the UI has both states to show: a run naming an unknown
        # account fails before rendering anything.
        from orchestration.defs.statements.assets import statements

        failed_key = f"2026-04-01|{SHARD_KEYS[shard_of(accounts[0])]}"
        result = dg.materialize([statements], partition_key=failed_key, instance=instance,
                                raise_on_error=False,
                                run_config={"ops": {"statements": {"config": {"account_ids": ["acct_unknown"]}}}})
        assert not result.success

    _screenshot_partitions_page(workspace, env, tmp_path, month="2026-07-01",
                                shard=SHARD_KEYS[shard_of(accounts[0])])


def _screenshot_partitions_page(workspace: Path, env: dict, tmp_path: Path, *, month: str,
                                shard: str) -> None:
    """Start dagster-webserver on this instance and photograph the asset's partitions page with
    one month and one shard selected (its manifest metadata on the right)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    port = free_port()
    with open(tmp_path / "webserver.log", "wb") as log:
        web = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                                "-p", str(port)], cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_dagster_webserver(web, port, lambda: (tmp_path / "webserver.log").read_text()[-3000:])
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/assets/statements?view=partitions",
                      wait_until="networkidle", timeout=120_000)
            page.get_by_text(re.compile(r"Materialized \(\d+\)")).first.wait_for(timeout=60_000)
            # The first-visit community dialog can appear a moment after the page: wait for it.
            skip = page.get_by_role("button", name="Skip")
            try:
                skip.first.wait_for(timeout=10_000)
                skip.first.click()
            except PlaywrightTimeout:
                pass
            # Partition lists render a hidden copy of each label to measure it: click visible ones.
            page.locator(f":text-is('{month}'):visible").first.click()
            page.wait_for_timeout(1500)
            page.locator(f":text-is('{shard}'):visible").last.click()
            page.get_by_text("manifest", exact=False).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            text = page.inner_text("body")
            page.screenshot(path=str(SCREENSHOT))
            browser.close()
        materialized = int(re.search(r"Materialized \((\d+)\)", text).group(1))
        failed = int(re.search(r"Failed \((\d+)\)", text).group(1))
        assert materialized >= 3 and failed >= 1, text[:2000]
        assert "completed" in text and "balance.summary:pdf" in text, text[:3000]
    finally:
        os.killpg(web.pid, signal.SIGINT)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
