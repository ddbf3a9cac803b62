"""`dagster-daemon` with a 1 s sensor loop: `python -m orchestration.daemon run -w workspace.yaml`.

Dagster's sensor daemon sleeps to fill a fixed 5 s loop (`MIN_INTERVAL_LOOP_TIME`) whatever a
sensor's `minimum_interval_seconds` says, so a new report request waited 2.5 s on average (up to
5 s) before its run was even created — half of the on-demand latency budget. Each sensor still
honours its own minimum interval, so only `report_request_sensor` (1 s) runs more often. Dagster is
pinned exactly in pyproject.toml; tests/unit/test_daemon_entrypoint.py fails if the constant moves.
"""

from __future__ import annotations

import sys

import dagster._daemon.sensor as sensor_daemon

SENSOR_LOOP_SECONDS = 1


def main() -> int:
    sensor_daemon.MIN_INTERVAL_LOOP_TIME = SENSOR_LOOP_SECONDS
    from dagster._daemon.cli import main as dagster_daemon_main

    sys.argv[0] = "dagster-daemon"
    return dagster_daemon_main()


if __name__ == "__main__":
    sys.exit(main())
