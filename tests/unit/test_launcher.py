"""orchestration/launcher.py: which runs start from the warm forkserver (the Dagster internals its
run worker calls are pinned in tests/unit/test_dagster_internals.py). The fork path itself runs
for real in tests/integration/test_report_runs.py."""

from __future__ import annotations

import sys

import pytest
from dagster._core.launcher import LaunchRunContext
from dagster._core.remote_origin import (GrpcServerCodeLocationOrigin,
                                         ManagedGrpcPythonEnvCodeLocationOrigin,
                                         RemoteJobOrigin, RemoteRepositoryOrigin)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from orchestration.launcher import WarmRunLauncher


def _run(job_name: str, location_origin) -> LaunchRunContext:
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location_origin, "__repository__"), job_name)
    return LaunchRunContext(dagster_run=DagsterRun(job_name=job_name, run_id="r1",
                                                   remote_job_origin=origin), workspace=None)


def _managed(executable: str | None = sys.executable):
    return ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=executable, module_name="orchestration.reports_definitions",
                             working_directory="."), "reports")


def test_report_runs_of_a_location_the_daemon_started_here_are_forked():
    assert WarmRunLauncher().forks(_run("report_job", _managed()))


@pytest.mark.parametrize("context", [
    _run("platform_refresh", _managed()),  # not a configured job
    _run("report_job", GrpcServerCodeLocationOrigin(host="code-reports", port=4001,
                                                    location_name="reports")),  # another server
    _run("report_job", _managed("/opt/other-env/bin/python")),  # another Python environment
], ids=["other-job", "grpc-server-location", "other-interpreter"])
def test_everything_else_goes_through_the_default_launcher(context):
    assert not WarmRunLauncher().forks(context)


def test_jobs_are_configurable():
    assert WarmRunLauncher(jobs=["platform_refresh"]).forks(_run("platform_refresh", _managed()))
    config = {field: spec.default_value for field, spec in WarmRunLauncher.config_type().items()}
    assert config["jobs"] == ["report_job"]


def test_run_monitoring_finds_a_forked_worker_that_died():
    """A batch worker killed between two requests holds no request whose heartbeat could stop:
    Dagster's run monitoring asks the launcher, and fails the run once its worker is gone."""
    import multiprocessing
    import time

    from dagster._core.launcher import WorkerStatus

    from orchestration.launcher import WORKER_PID_TAG

    launcher = WarmRunLauncher()
    assert launcher.supports_check_run_worker_health
    worker = multiprocessing.get_context("forkserver").Process(target=time.sleep, args=(60,))
    worker.start()
    run = DagsterRun(job_name="report_job", run_id="r1", tags={WORKER_PID_TAG: str(worker.pid)})
    try:
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    finally:
        worker.kill()
        worker.join()
    dead = launcher.check_run_worker_health(run)
    assert dead.status == WorkerStatus.FAILED and str(worker.pid) in dead.msg
    # A run of the default launcher (no forked worker) is left to monitoring's timeouts.
    unforked = DagsterRun(job_name="platform_refresh", run_id="r2")
    assert launcher.check_run_worker_health(unforked).status == WorkerStatus.RUNNING
