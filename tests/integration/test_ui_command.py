"""`payreports ui`: the Dagster webserver and daemon come up on the project's Postgres-backed
instance, and Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from exports import db
from exports.settings import REPO_ROOT
from tests.fixtures.services import free_port

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
        while True:
            assert ui.poll() is None, ui.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the webserver did not come up"
            time.sleep(1)
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
