"""Prepare $DAGSTER_HOME from the repo's dagster.yaml and the project's settings.

This module only writes files and environment variables; it does not import Dagster, so the
CLI can call it before starting `dagster-webserver` / `dagster-daemon` subprocesses.
"""

from __future__ import annotations

import os
import shutil

from exports import db
from exports.settings import REPO_ROOT, Settings, get_settings


def dagster_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables the Dagster instance and code location need."""
    settings = settings or get_settings()
    return {
        "DAGSTER_HOME": str(settings.dagster_home),
        "DAGSTER_PG_URL": db.database_url("dagster", settings),
        # Three slots on 2 cores: report runs spend most of their life starting up, and their
        # warehouse part is serialized by its lock anyway (orchestration/tags.py).
        "DAGSTER_MAX_CONCURRENT_RUNS": os.environ.get("DAGSTER_MAX_CONCURRENT_RUNS", "3"),
        # Dagster's telemetry uploader thread (webserver and daemon) does not read dagster.yaml's
        # `telemetry: enabled: false`; only this variable stops it. It treats $DAGSTER_HOME/logs
        # as its spool (moved away and deleted on each start), which is also why the project's
        # own logs live in Settings.logs_dir instead.
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PAYREPORTS_STATE_DIR": str(settings.state_dir),
        "PAYREPORTS_EMBEDDED_POSTGRES_PORT": str(settings.embedded_postgres_port),
    }


def prepare_dagster_home(settings: Settings | None = None) -> dict[str, str]:
    """Copy dagster.yaml into DAGSTER_HOME, export the env vars into this process, return them."""
    settings = settings or get_settings()
    env = dagster_env(settings)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    os.environ.update(env)
    return env
