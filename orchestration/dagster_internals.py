"""The only module of this project that touches Dagster's private modules (`dagster._*`).

Opt-in: nothing imports it unless the instance is configured with the warm run launcher
(dagster.yaml `run_launcher: orchestration.launcher.WarmRunLauncher`) or the pooled storage
(`storage: custom: orchestration.storage.PooledPostgresStorage`), or the daemon is started
through `python -m orchestration.daemon` (what `payreports ui` does). Plain `dagster-daemon`,
`storage: postgres:` and the DefaultRunLauncher work without it, only slower to start runs and to
tick sensors, and with a new database connection for each storage operation.

What it uses, and why no public API does it:
- the run worker body of `dagster api execute_run` (`dagster._cli.api`), so a forked warm worker
  runs a run exactly as Dagster's own run process does (orchestration/launcher.py);
- the launcher plumbing a RunLauncher subclass receives (LaunchRunContext, the code location
  origin it checks, ExecuteRunArgs, ConfigurableClassData) and what its worker health check
  answers Dagster's run monitoring with (CheckRunHealthResult, WorkerStatus);
- the asset backfill record the UI's "Materialize" dialog submits (`PartitionBackfill`, a new
  backfill id, its terminal statuses), so `payreports ops backfill` can submit a statements
  backfill the daemon runs (orchestration/backfills.py; no public Python call submits one, the
  UI goes through GraphQL);
- the SQLAlchemy engine of Dagster's Postgres storages, to give it a pool (with a ping on
  checkout, which `optimize_for_webserver` does not set) and to close it on `dispose()`: those
  storages keep no connection open and so never close one; the pooled storage
  (orchestration/storage.py) keeps one and must;
- two module constants of the daemon: the sensor loop (5 s; a 1 s loop halves the wait of a new
  request for its run) and the workspace reload interval (60 s; each reload restarts the code
  servers, seconds of CPU on a small machine).

Dagster is pinned exactly (pyproject.toml) and tests/unit/test_dagster_internals.py checks every
name below against the installed version: an upgrade that moves one fails there, loudly, naming
it, instead of a run or the latency breaking silently.
"""

from __future__ import annotations

import sys
from types import ModuleType

from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, PartitionBackfill
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin
from dagster._grpc.types import ExecuteRunArgs
from dagster._core.utils import make_new_backfill_id
from dagster._serdes import ConfigurableClassData

# The Dagster version these internals were read against (tests/unit/test_dagster_internals.py).
CHECKED_AGAINST_DAGSTER = "1.13.27"

__all__ = ["BULK_ACTION_TERMINAL_STATUSES", "CHECKED_AGAINST_DAGSTER", "CheckRunHealthResult",
           "ConfigurableClassData", "WorkerStatus",
           "PartitionBackfill", "make_new_backfill_id", "ExecuteRunArgs", "LaunchRunContext",
           "ManagedGrpcPythonEnvCodeLocationOrigin", "daemon_modules", "dispose_storage_engine",
           "execute_run_worker", "run_daemon", "use_pooled_engine"]


def daemon_modules() -> tuple[ModuleType, ModuleType]:
    """(the sensor daemon, the daemon controller): imported only where the daemon runs, not in
    every forked run worker."""
    import dagster._daemon.controller as daemon_controller
    import dagster._daemon.sensor as sensor_daemon

    return sensor_daemon, daemon_controller


def use_pooled_engine(storage, *, pool_size: int, max_overflow: int, pool_recycle: int) -> None:
    """Give a dagster_postgres run, event log or schedule storage a pooled engine in place of its
    NullPool one, built as its `optimize_for_webserver` builds the webserver's, plus a ping on
    checkout: a kept connection that died with a database restart is replaced, not handed to a
    run's next event write (with NullPool every operation had a fresh one)."""
    from dagster_postgres.utils import create_pg_engine

    kwargs = {"isolation_level": "AUTOCOMMIT", "pool_size": pool_size,
              "max_overflow": max_overflow, "pool_recycle": pool_recycle, "pool_pre_ping": True}
    existing_options = storage._engine.url.query.get("options")
    if existing_options:
        kwargs["connect_args"] = {"options": existing_options}
    unpooled = storage._engine
    storage._engine = create_pg_engine(storage.postgres_url, storage._token_provider, **kwargs)
    unpooled.dispose()


def dispose_storage_engine(storage) -> None:
    """Close the connections a dagster_postgres storage keeps."""
    storage._engine.dispose()


def execute_run_worker(args: ExecuteRunArgs) -> int:
    """What `dagster api execute_run` does once everything is imported: open the instance from the
    run's instance ref and execute the run in this process; returns the exit code."""
    from dagster._cli.api import _execute_run_command_body, get_instance_for_cli
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts(), get_instance_for_cli(instance_ref=args.instance_ref) as instance:
        return _execute_run_command_body(args.run_id, instance, lambda event: None,
                                         set_exit_code_on_failure=True)


def run_daemon(*, sensor_loop_seconds: float, workspace_reload_seconds: float) -> int:
    """`dagster-daemon` (arguments from sys.argv) with a shorter sensor loop and a rarer
    workspace reload. Each sensor still honours its own minimum_interval_seconds."""
    sensor_daemon, daemon_controller = daemon_modules()
    sensor_daemon.MIN_INTERVAL_LOOP_TIME = sensor_loop_seconds
    daemon_controller.RELOAD_WORKSPACE_INTERVAL = workspace_reload_seconds
    from dagster._daemon.cli import main as dagster_daemon_main

    sys.argv[0] = "dagster-daemon"
    return dagster_daemon_main()
