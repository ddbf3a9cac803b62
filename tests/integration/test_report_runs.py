"""Report requests end to end: process_request against the demo platform, and the real
dagster-daemon turning API requests into batch runs (including a batch whose worker is killed)."""

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

# Report runs are batches (a run claims requests until none is left), so a burst needs few runs;
# benchmarks/report_drain.py measures a large drain.
BURST = 12
KILL_BATCH = 150


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


def _report_runs(run_ids) -> dict:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return {run_id: instance.get_run_by_id(run_id) for run_id in run_ids}


@pytest.mark.slow
def test_burst_of_api_requests_is_served_by_few_batch_runs(demo_platform, dagster_daemon,
                                                           api_server, create_api_key):
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
    assert all(r["attempt_count"] == 1 for r in rows)
    # A batch run ends a moment after its last request (it hands its deliveries over first).
    runs = _wait_for(lambda: (found := _report_runs({r["dagster_run_id"] for r in rows})) and all(
        run.is_finished for run in found.values() if run.job_name == "report_job") and found,
        60, "the batch runs to end")
    assert len(runs) < BURST  # batches: a run processed several requests
    # A statements run the session's daemon has going (month-end sensor, backfill tests) serves
    # on-demand requests between packs; every other one is a report batch run.
    batches = {i: run for i, run in runs.items() if run.job_name == "report_job"}
    assert all(run.tags.get("statements") == "embedded" for i, run in runs.items() if i not in batches)
    # (Not all green: the session's database holds other tests' unservable leftovers, which a
    # batch also claims and fails — and a batch with a failed request fails.)
    in_batches = sum(r["dagster_run_id"] in batches for r in rows)
    assert sum(int(run.tags["payreports/completed"]) for run in batches.values()) >= in_batches
    assert all(get_storage(settings).exists(r["file_key"]) for r in rows)


@pytest.mark.slow
def test_killed_batch_run_leaves_no_request_stuck_or_duplicated(demo_platform, dagster_daemon):
    settings = demo_platform.settings
    account = _any_account(settings)
    # Scheduled-priority work (the bulk lane), enough that the batch is still running when killed.
    ids = [store.create(store.NewRequest(
        account_id=account, report_type="balance.summary.1", format="csv", priority=0,
        parameters={"interval_start": 1790812800, "interval_end": 1793491200}), settings)[0]["id"]
        for _ in range(KILL_BATCH)]

    from dagster import DagsterInstance

    # Kill the batch's worker once it has finished a few requests and is working on another.
    deadline = time.monotonic() + 180
    with DagsterInstance.get() as instance:
        while True:
            assert time.monotonic() < deadline, "timed out waiting for the batch to get going"
            rows = [store.get(i, account, settings) for i in ids]
            done = [r for r in rows if r["status"] == "completed"]
            busy = [r for r in rows if r["status"] == "processing"]
            assert len(done) < KILL_BATCH, "the batch finished before its worker could be killed"
            pid = (_run_worker_pid(instance, busy[0]["dagster_run_id"])
                   if len(done) >= 3 and busy else None)
            if pid:
                break
            time.sleep(0.05)
        killed_run = busy[0]["dagster_run_id"]
        os.kill(pid, signal.SIGKILL)
    finished_before = {r["id"]: (r["completed_at"], r["sha256"])
                       for r in (store.get(i, account, settings) for i in ids)
                       if r["status"] == "completed"}
    assert len(finished_before) >= 3

    def all_final():
        rows = [store.get(i, account, settings) for i in ids]
        return rows if all(r["status"] in ("completed", "failed") for r in rows) else None

    rows = _wait_for(all_final, 400, "every request of the killed batch to finish")
    for row in rows:
        if row["status"] == "failed":
            assert row["error_message"], row["id"]  # failed with a reason
        else:
            assert get_storage(settings).exists(row["file_key"])
        assert len(list(settings.files_dir.rglob(f"{row['id']}*"))) <= 1  # one file each
    # Finished ones stayed finished: not re-rendered by the batch that took over.
    after = {r["id"]: (r["completed_at"], r["sha256"]) for r in rows}
    assert all(after[i] == before for i, before in finished_before.items())
    assert [r["status"] for r in rows].count("completed") == KILL_BATCH
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed_run).status.value == "FAILURE"
    # Every report's deliveries exactly once (here its in-app notice), also those the killed
    # worker completed and had not delivered yet: the delivery sensor's ticks send what is left.
    from datetime import UTC, datetime

    from exports.delivery import deliver_due
    from exports.delivery.dispatch import ATTEMPT_LEASE, RECORD_GRACE, list_deliveries

    later = datetime.now(UTC) + RECORD_GRACE + ATTEMPT_LEASE
    for tick in range(3):
        deliver_due(settings, now=later + tick * ATTEMPT_LEASE, limit=10 * KILL_BATCH)
    for row in rows:
        [in_app] = list_deliveries(row["id"], account, settings)
        assert (in_app["channel"], in_app["status"]) == ("in_app", "sent"), row["id"]
        assert [a["status"] for a in in_app["attempts"]] == ["sent"], row["id"]
