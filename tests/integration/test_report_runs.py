"""Report requests end to end: process_request against the demo platform, and the real
dagster-daemon turning API requests into exactly one run each (including a killed run)."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from exports.requests import store
from exports.settings import REPO_ROOT
from exports.requests.processing import process_request
from exports.storage import get_storage

pytestmark = pytest.mark.integration

# Each report_job run starts a process that loads the whole code location (~10-35 s on the shared
# 2-core machine) and embedded-warehouse runs go one at a time, so the e2e burst is kept small;
# benchmarks/request_latency.py measures the 20-request burst.
BURST = 6


def _small_request(account_id: str) -> store.NewRequest:
    return store.NewRequest(account_id=account_id, report_type="balance.summary.1", format="csv",
                            parameters={"interval_start": 1790812800, "interval_end": 1793491200})


def _any_account(settings) -> str:
    from exports import db

    with db.connect("source", settings) as conn:
        return conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]


def test_process_request_end_to_end(demo_platform, tmp_path):
    settings = demo_platform.settings
    account = _any_account(settings)
    row, _ = store.create(_small_request(account), settings)
    assert process_request(row["id"], settings, run_id="test-run") == "completed"
    done = store.get(row["id"], account, settings)
    assert done["status"] == "completed" and done["progress"] == 100 and done["attempt_count"] == 1
    assert done["file_key"] == f"reports/{account}/{row['created_at']:%Y-%m-%d}/{row['id']}.csv"
    with get_storage(settings).open(done["file_key"]) as fh:
        content = fh.read()
    assert hashlib.sha256(content).hexdigest() == done["sha256"]
    assert len(content) == done["file_size_bytes"] and done["manifest"]["row_count"] == done["row_count"]
    assert done["expires_at"] > done["completed_at"]
    # A duplicate or late retry is harmless: nothing is re-rendered, the row is unchanged.
    assert process_request(row["id"], settings, run_id="dup") == "completed"
    assert store.get(row["id"], account, settings)["attempt_count"] == 1


def test_invalid_request_fails_with_the_validation_message(demo_platform):
    settings = demo_platform.settings
    account = _any_account(settings)
    bad = store.NewRequest(account_id=account, report_type="balance.summary.1", format="csv",
                           parameters={"interval_start": 1793491200, "interval_end": 1790812800})
    row, _ = store.create(bad, settings)
    assert process_request(row["id"], settings) == "failed"
    assert "interval_end" in store.get(row["id"], account, settings)["error_message"]


@pytest.fixture(scope="module")
def dagster_daemon(demo_platform, tmp_path_factory):
    from exports.dagster_home import prepare_dagster_home

    env = {**os.environ, **prepare_dagster_home(demo_platform.settings)}
    log_path = tmp_path_factory.mktemp("daemon") / "daemon.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "orchestration.daemon", "run", "-w",
                             str(REPO_ROOT / "workspace.yaml")], cwd=REPO_ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield proc, log_path
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _run_worker_pid(instance, run_id: str) -> int | None:
    """The pid of the process executing the run, as its run worker reported it in the event log
    ("Started process for run (pid: N)."), whichever launcher started it."""
    import re

    from dagster import DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    for record in records:
        match = re.search(r"Started process for run \(pid: (\d+)\)", record.event_log_entry.message or "")
        if match:
            return int(match.group(1))
    return None


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _runs_by_request(settings) -> dict[str, list]:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="report_job"))
    by_request: dict[str, list] = {}
    for run in runs:
        by_request.setdefault(run.tags.get("report_request_id"), []).append(run)
    return by_request


@pytest.mark.slow
def test_burst_of_api_requests_each_get_exactly_one_run(demo_platform, dagster_daemon, api_server,
                                                        create_api_key):
    settings = demo_platform.settings
    account = _any_account(settings)
    key = create_api_key(account)
    body = {"report_type": "balance.summary.1", "format": "csv",
            "parameters": {"interval_start": 1790812800, "interval_end": 1793491200}}

    def post(i: int) -> str:
        with api_server.client(key) as client:
            response = client.post("/v1/reports", json=body, headers={"Idempotency-Key": f"burst-{i}"})
            assert response.status_code == 200, response.text
            return response.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(post, range(BURST)))
    assert len(set(ids)) == BURST

    def all_done():
        rows = [store.get(i, account, settings) for i in ids]
        return rows if all(r["status"] in ("completed", "failed") for r in rows) else None

    rows = _wait_for(all_done, 420, f"{BURST} reports to finish")
    assert [r["status"] for r in rows] == ["completed"] * BURST, [r["error_message"] for r in rows]
    runs = _runs_by_request(settings)
    assert all(len(runs.get(i, [])) == 1 for i in ids), {i: len(runs.get(i, [])) for i in ids}
    assert {r["sha256"] for r in rows} and all(get_storage(settings).exists(r["file_key"]) for r in rows)


@pytest.mark.slow
def test_killed_run_ends_completed_or_failed_never_stuck(demo_platform, dagster_daemon):
    settings = demo_platform.settings
    account = _any_account(settings)
    # A bigger itemized report so there is time to kill the run mid-export.
    row, _ = store.create(store.NewRequest(
        account_id=account, report_type="balance_change_from_activity.itemized.3", format="csv",
        parameters={"interval_start": 1788307200, "interval_end": 1793491200}), settings)

    from dagster import DagsterInstance

    # Kill the run's worker the moment it has claimed the request (polling every 50 ms: the
    # export itself takes about a second), so it dies mid-export.
    deadline = time.monotonic() + 120
    with DagsterInstance.get() as instance:
        while True:
            assert time.monotonic() < deadline, "timed out waiting for the run to start processing"
            current = store.get(row["id"], account, settings)
            assert current["status"] in ("pending", "processing"), (
                f"the report ended {current['status']} before its run worker could be killed")
            pid = (_run_worker_pid(instance, current["dagster_run_id"])
                   if current["status"] == "processing" and current["dagster_run_id"] else None)
            if pid:
                break
            time.sleep(0.05)
        # It was started by the warm launcher (orchestration/launcher.py), which tags its worker.
        from orchestration.launcher import WORKER_PID_TAG

        assert instance.get_run_by_id(current["dagster_run_id"]).tags.get(WORKER_PID_TAG) == str(pid)
    os.kill(pid, signal.SIGKILL)

    def finished():
        current = store.get(row["id"], account, settings)
        return current if current["status"] in ("completed", "failed") else None

    final = _wait_for(finished, 300, "the killed request to finish")
    if final["status"] == "failed":
        assert "internal error" in final["error_message"]
    else:
        assert get_storage(settings).exists(final["file_key"])
    storage_root = settings.files_dir
    stored = list(storage_root.rglob(f"{row['id']}*"))
    assert len(stored) <= 1, stored
