"""`payreports ui`: the Dagster webserver and daemon come up on the project's Postgres-backed
instance, and Ctrl-C stops both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from exports import db
from exports.settings import REPO_ROOT
from cli.stack import group_members
from tests.fixtures.services import dagster_webserver_up, free_port, wait_for_dagster_webserver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_ui_serves_the_webserver_and_stops_both_on_ctrl_c(postgres, tmp_path):
    port = free_port()
    workspace = tmp_path / "workspace.yaml"  # a tiny code location keeps start-up short
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: tests.integration.dagster_queue.definitions\n"
        f"      working_directory: {REPO_ROOT}\n")
    ui = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "ui", "--port", str(port),
         "--workspace", str(workspace)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        wait_for_dagster_webserver(ui, port, ui.stdout.read)
        # The daemon writes heartbeats into the instance's Postgres storage, not SQLite files.
        dagster_url = db.database_url("dagster", postgres)
        while True:
            with psycopg.connect(dagster_url) as conn:
                beats = conn.execute("SELECT count(*) FROM daemon_heartbeats").fetchone()[0] \
                    if conn.execute("SELECT to_regclass('daemon_heartbeats')").fetchone()[0] else 0
            if beats:
                break
            assert time.monotonic() < deadline, "the daemon never sent a heartbeat"
            time.sleep(1)
        assert not (postgres.dagster_home / "history").exists()  # no SQLite run storage
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        output, _ = ui.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}" in output
    assert "stopping the webserver and the daemon" in output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2)


MARKER = re.compile(r"=== payreports ui: (\S+) started at \S+ \(pid (\d+)\) ===")


def started_pids(log_path) -> list[int]:
    return [int(m.group(2)) for m in MARKER.finditer(log_path.read_text())] if log_path.exists() else []


def wait_for(predicate, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def start_ui(port: int, workspace) -> subprocess.Popen:
    """`ui` with SIGINT ignored, as a process started by `nohup payreports ui &` or a CI script
    gets it: it must still stop, children included, on the SIGINT the tests send."""
    return subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "ui", "--port", str(port),
         "--workspace", str(workspace)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_ui_restarts_a_killed_daemon_without_lingering_children_and_logs_survive_restarts(
        postgres, tmp_path):
    port = free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: tests.integration.dagster_queue.definitions\n"
        f"      working_directory: {REPO_ROOT}\n")
    logs_dir = postgres.logs_dir
    assert not logs_dir.is_relative_to(postgres.dagster_home)  # not Dagster's telemetry spool
    daemon_log = logs_dir / "dagster-daemon.log"
    known_before = len(started_pids(daemon_log))
    ui = start_ui(port, workspace)
    try:
        wait_for(lambda: dagster_webserver_up(port), "the webserver did not come up")
        first = wait_for(lambda: started_pids(daemon_log)[known_before:], "no daemon started")[0]
        # The daemon's code server runs in its process group.
        old_group = wait_for(lambda: [p for p in group_members(first) if p != first],
                             "the daemon started no code server")
        with open(f"/proc/{first}/environ", "rb") as handle:
            assert b"DAGSTER_DISABLE_TELEMETRY=1" in handle.read().split(b"\0")

        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: started_pids(daemon_log)[known_before + 1:], "daemon not restarted")[0]
        assert second != first
        wait_for(lambda: not group_members(first), f"children of the killed daemon linger: {old_group}", 30)
        assert dagster_webserver_up(port)  # the webserver kept serving
        assert ui.poll() is None
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        output, _ = ui.communicate(timeout=60)
    assert "dagster-daemon exited with -9; restarting it" in output, output
    webserver_pid = started_pids(logs_dir / "dagster-webserver.log")[-1]
    for pgid in (second, webserver_pid):
        assert group_members(pgid) == [], f"group {pgid} outlived `ui`"

    # A second `ui`: Dagster's start-up (its telemetry uploader included) leaves earlier logs alone.
    before = daemon_log.read_text()
    ui = start_ui(port, workspace)
    try:
        wait_for(lambda: dagster_webserver_up(port), "the webserver did not come up again")
        wait_for(lambda: len(started_pids(daemon_log)) > known_before + 2, "no daemon the second time")
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        ui.communicate(timeout=60)
    assert daemon_log.read_text().startswith(before)
    assert {first, second} <= set(started_pids(daemon_log))
