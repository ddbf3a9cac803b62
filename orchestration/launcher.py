"""`WarmRunLauncher`: report runs start as forks of a warm process instead of a fresh interpreter.

Dagster's DefaultRunLauncher asks the code location's gRPC server to start each run, and the
server spawns a new Python process that imports Dagster and loads the code location again:
~2.5 s of the ~4 s between a report run being dequeued and its op starting on an idle machine,
far more on a loaded one. Report runs are batches now, so a backlog pays it once per batch; but an
on-demand request on an idle queue still needs a run of its own, and there the start-up is most
of its latency (benchmarks/report_drain.py, idle on-demand: docs/capacity.md).

This launcher keeps a multiprocessing *forkserver*: a fresh interpreter (not a fork of the
multi-threaded daemon) that has imported `preload_modules` once and forks a child per run. The
child runs exactly what `dagster api execute_run` runs (`execute_run_command`), so the run's event
log, retries, monitoring and the UI behave as with the default launcher; only its start is warm.

It forks only where the default launcher would have run the code on this same machine and in this
same Python environment anyway: jobs named in `jobs`, from code locations that the daemon itself
started from a `python_module` workspace entry (the local stack: `./run ui`, tests, benchmarks).
Runs of code locations served by separate gRPC servers (workspace.production.yaml, containers,
Kubernetes) and every other job go through the DefaultRunLauncher unchanged.

`terminate` (the UI's terminate button) sends the worker SIGINT, which Dagster's run worker turns
into a clean cancellation, exactly what the gRPC server does for its own run processes. A worker
killed outright is found by Dagster's run monitoring (dagster.yaml `run_monitoring`), which asks
`check_run_worker_health` every poll and fails the run once its forked worker is gone. The report
watchdog (orchestration/defs/reports/sensors.py) only sees a dead run through a request whose
heartbeat stopped: a batch worker killed between two requests holds none, and its STARTED run kept
the embedded warehouse's run slot (`warehouse=embedded`, limit 1) forever, so the batch's
remaining requests stayed pending behind it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import Array, DefaultRunLauncher, Field, deserialize_value, serialize_value

# Dagster internals live in one opt-in module (see its docstring); this launcher is that opt-in.
from orchestration.dagster_internals import (CheckRunHealthResult, ConfigurableClassData,
                                             ExecuteRunArgs, LaunchRunContext,
                                             ManagedGrpcPythonEnvCodeLocationOrigin, WorkerStatus,
                                             execute_run_worker)

log = logging.getLogger(__name__)

WORKER_PID_TAG = "payreports/worker_pid"
DEFAULT_JOBS = ("report_job",)
# What a report run imports before its op starts. Not chdb/clickhouse_connect/the writers: they
# start thread pools at import, and a process with threads must not be forked.
DEFAULT_PRELOAD_MODULES = ("dagster", "dagster_postgres", "orchestration.reports_definitions",
                           "exports.requests.processing")


def run_worker(serialized_args: str) -> None:
    """Body of a forked run worker: what `dagster api execute_run` does once it has imported
    everything (orchestration/dagster_internals.py)."""
    sys.exit(execute_run_worker(deserialize_value(serialized_args, ExecuteRunArgs)))


class WarmRunLauncher(DefaultRunLauncher):
    def __init__(self, inst_data: ConfigurableClassData | None = None,
                 jobs: Sequence[str] = DEFAULT_JOBS,
                 preload_modules: Sequence[str] = DEFAULT_PRELOAD_MODULES):
        super().__init__(inst_data=inst_data)
        self._jobs = frozenset(jobs)
        self._preload_modules = list(preload_modules)
        self._context: Any = None
        self._workers: dict[str, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()

    @classmethod
    def config_type(cls):
        return {
            "jobs": Field(Array(str), is_required=False, default_value=list(DEFAULT_JOBS),
                          description="Jobs whose runs start from the warm forkserver."),
            "preload_modules": Field(Array(str), is_required=False,
                                     default_value=list(DEFAULT_PRELOAD_MODULES),
                                     description="Modules the forkserver imports once."),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # ------------------------------------------------------------------ launching

    def forks(self, context: LaunchRunContext) -> bool:
        """True when the run's code would run on this machine, in this interpreter, anyway."""
        run = context.dagster_run
        if run.job_name not in self._jobs or run.remote_job_origin is None:
            return False
        origin = run.remote_job_origin.repository_origin.code_location_origin
        if not isinstance(origin, ManagedGrpcPythonEnvCodeLocationOrigin):
            return False  # a separate gRPC server (another container, host or image) runs it
        executable = origin.loadable_target_origin.executable_path
        return executable is None or os.path.realpath(executable) == os.path.realpath(sys.executable)

    def _forkserver(self):
        if self._context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(self._preload_modules)
            self._context = context
        return self._context

    def launch_run(self, context: LaunchRunContext) -> None:
        if not self.forks(context):
            super().launch_run(context)
            return
        run = context.dagster_run
        args = serialize_value(ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id,
                                              instance_ref=self._instance.get_ref(),
                                              set_exit_code_on_failure=True))
        try:
            # Not a daemonic process: stopping the daemon waits for runs in flight to finish.
            worker = self._forkserver().Process(target=run_worker, args=(args,),
                                                name=f"dagster-run-{run.run_id}")
            worker.start()
        except Exception:  # noqa: BLE001 - a broken forkserver must not stop runs from starting
            log.exception("could not fork a warm run worker; using the default launcher")
            super().launch_run(context)
            return
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(worker.pid)})
        with self._lock:
            for run_id, done in [(r, w) for r, w in self._workers.items() if not w.is_alive()]:
                done.join(0)  # reap its exit status
                del self._workers[run_id]
            self._workers[run.run_id] = worker
        self._run_ids.add(run.run_id)

    # ------------------------------------------------------------------ terminating

    def _worker_pid(self, run) -> int | None:
        worker = self._workers.get(run.run_id)
        if worker is not None:
            return worker.pid if worker.is_alive() else None
        # Launched by another process (the webserver asks; the daemon launched it): the pid tag,
        # trusted only while that pid is still a forkserver child on this machine.
        pid = run.tags.get(WORKER_PID_TAG)
        if not pid:
            return None
        try:
            with open(f"/proc/{int(pid)}/cmdline", "rb") as fh:
                alive_worker = b"multiprocessing.forkserver" in fh.read()
        except (OSError, ValueError):
            return None
        return int(pid) if alive_worker else None

    # ------------------------------------------------------------------ run monitoring

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        """FAILED once a forked worker's process is gone while its run is still STARTED (run
        monitoring re-reads the run before acting, so a worker that just finished is not
        failed). Runs of the default launcher have no such check: RUNNING, which leaves them to
        monitoring's timeouts as before."""
        pid = run.tags.get(WORKER_PID_TAG)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not a forked run: not checked")
        if self._worker_pid(run) is None:
            return CheckRunHealthResult(WorkerStatus.FAILED,
                                        f"the run's worker process (pid {pid}) is gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING)

    def terminate(self, run_id: str) -> bool:
        if not self.has_instance:
            return False
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if WORKER_PID_TAG not in run.tags:
            return super().terminate(run_id)
        self._instance.report_run_canceling(run)
        pid = self._worker_pid(run)
        if pid is None:
            self._instance.report_engine_event(
                message="Unable to find the run's worker process to terminate.", dagster_run=run,
                cls=self.__class__)
            return False
        os.kill(pid, signal.SIGINT)  # Dagster's run worker turns SIGINT into a cancellation
        return True
