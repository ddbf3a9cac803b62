"""`dagster-daemon` with a 1 s sensor loop: `python -m orchestration.daemon run -w workspace.yaml`.

Dagster's sensor daemon sleeps to fill a fixed 5 s loop (`MIN_INTERVAL_LOOP_TIME`) whatever a
sensor's `minimum_interval_seconds` says, so a new report request waited 2.5 s on average (up to
5 s) before its run was even created — half of the on-demand latency budget. Each sensor still
honours its own minimum interval, so only `report_request_sensor` (1 s) runs more often. Dagster is
pinned exactly in pyproject.toml; tests/unit/test_dagster_internals.py fails if the constants move.

It also stretches the daemon's workspace refresh from 60 s to WORKSPACE_RELOAD_SECONDS. Each
refresh replaces every code server the daemon started from a `python_module` workspace entry:
two new processes importing Dagster, dagster-dbt and the dbt manifest, ~5 s of CPU on a 2-core
machine every minute. The latency benchmark showed requests arriving during a refresh waiting
seconds longer (the p95), while nothing needs the refresh: local code changes are picked up by
restarting `./run ui`, and production code servers (workspace.production.yaml) are long-lived
gRPC servers the refresh only reconnects to.
"""

from __future__ import annotations

import sys

SENSOR_LOOP_SECONDS = 1
WORKSPACE_RELOAD_SECONDS = 600


def main() -> int:
    # Dagster internals live in one opt-in module (see its docstring); this entry point opts in.
    from orchestration.dagster_internals import run_daemon

    return run_daemon(sensor_loop_seconds=SENSOR_LOOP_SECONDS,
                      workspace_reload_seconds=WORKSPACE_RELOAD_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
