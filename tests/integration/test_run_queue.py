"""The repo's dagster.yaml, run for real: Postgres run storage, the daemon's QueuedRunCoordinator
and its tag limits. More runs are queued than the `warehouse=embedded` limit allows; the runs'
own start/end times in the instance must show them one at a time, while runs tagged
`warehouse=server` (no limit) run side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from exports.dagster_home import prepare_dagster_home
from exports.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

BIN = Path(sys.executable).parent


def _launch(workspace: Path, env: dict[str, str], tags: dict[str, str], seconds: float):
    config = {"ops": {"hold_slot": {"config": {"seconds": seconds}}}}
    return subprocess.Popen(
        [str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", "sleeper",
         "--tags", json.dumps(tags), "--config-json", json.dumps(config)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _overlaps(intervals: list[tuple[float, float]]) -> bool:
    ordered = sorted(intervals)
    return any(later[0] < earlier[1] for earlier, later in zip(ordered, ordered[1:]))


def test_embedded_warehouse_runs_go_one_at_a_time(postgres: Settings, tmp_path: Path):
    env_vars = prepare_dagster_home(postgres)
    # Four slots: one embedded and both server runs fit at once, whatever the queue order, so
    # only the tag limits can keep runs apart.
    env = {**os.environ, **env_vars, "DAGSTER_MAX_CONCURRENT_RUNS": "4"}
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        "      module_name: tests.integration.dagster_queue.definitions\n"
        f"      working_directory: {REPO_ROOT}\n"
    )
    batch = uuid.uuid4().hex[:12]

    # Queue everything before the daemon runs, so only the coordinator decides the order.
    launches = [_launch(workspace, env, {"test_batch": batch, "warehouse": "embedded"}, 2.0)
                for _ in range(4)]
    launches += [_launch(workspace, env, {"test_batch": batch, "warehouse": "server"}, 8.0)
                 for _ in range(2)]
    for proc in launches:
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    instance = DagsterInstance.get()
    runs_filter = RunsFilter(tags={"test_batch": batch})
    queued = instance.get_run_records(filters=runs_filter)
    assert len(queued) == 6
    assert {record.dagster_run.status for record in queued} == {DagsterRunStatus.QUEUED}

    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            records = instance.get_run_records(filters=runs_filter)
            if all(record.dagster_run.is_finished for record in records):
                break
            assert daemon.poll() is None, "dagster-daemon exited early"
            if time.monotonic() > deadline:
                # Another test's run still in progress holds a tag's slot: name it.
                others = [(r.dagster_run.run_id, r.dagster_run.job_name, r.dagster_run.status.value,
                           dict(r.dagster_run.tags)) for r in instance.get_run_records(
                    filters=RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
                                               DagsterRunStatus.CANCELING]))
                    if r.dagster_run.tags.get("test_batch") != batch]
                raise AssertionError(f"{[r.dagster_run.status for r in records]}; other runs in "
                                     f"progress: {others}")
            time.sleep(1)
    finally:
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        instance.dispose()

    assert {r.dagster_run.status for r in records} == {DagsterRunStatus.SUCCESS}
    by_warehouse: dict[str, list[tuple[float, float]]] = {"embedded": [], "server": []}
    for record in records:
        by_warehouse[record.dagster_run.tags["warehouse"]].append(
            (record.start_time, record.end_time))
    assert len(by_warehouse["embedded"]) == 4
    assert not _overlaps(by_warehouse["embedded"]), sorted(by_warehouse["embedded"])
    # The control: without a tag limit the two 8-second runs do run side by side, so the
    # check above is the tag limit at work and not a side effect of a single slot.
    assert _overlaps(by_warehouse["server"]), sorted(by_warehouse["server"])
