#!/usr/bin/env python3
"""Run dbt against the project's warehouse: `python dbt_project/chdb_dbt.py build ...`.

dbt-clickhouse talks HTTP to a ClickHouse server. For the embedded warehouse (chdb) this launcher
swaps the adapter's HTTP client for clickhouse-connect's chdb client on the state dir's data
directory, and holds the warehouse lock for the whole dbt invocation (chdb lets one process open
the data directory). Against a ClickHouse server (PAYREPORTS_CLICKHOUSE_URL=http(s)://...) it
only exports the profile's connection variables and runs plain dbt.

Dagster's DbtCliResource uses this file as its `dbt_executable`, so it must stay executable and
behave like the `dbt` command (same arguments, same stdout, exit code 0/1/2).

Every path that builds the marts runs through here, so this is also where "data available up
to" moves: each model a `build`/`run` builds successfully records the replication watermark the
invocation consumed — read before dbt starts — capped by its parents' (exports.replication.
record_model_builds); data_available_end is the oldest over the models reports read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

PROJECT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT_DIR.parent))  # run as a script from anywhere

# Commands that never open a connection: no lock, no chdb.
_OFFLINE_COMMANDS = {"parse", "deps", "clean", "list", "ls", "compile", "--version", "--help", "debug",
                    "serve"}
_BUILDING_COMMANDS = {"build", "run"}


def _vars(argv: list[str]) -> dict:
    import yaml

    for i, arg in enumerate(argv):
        if arg == "--vars" and i + 1 < len(argv):
            return yaml.safe_load(argv[i + 1]) or {}
        if arg.startswith("--vars="):
            return yaml.safe_load(arg.split("=", 1)[1]) or {}
    return {}


def _record_model_builds(argv: list[str], result, consumed, settings) -> None:
    """Each model built successfully is built through the replication watermark read before
    dbt started, capped by its parent models' times (a parent built earlier, from older raw
    rows, caps what its children can claim). A partitioned run of old days only
    (catch_up=false) rebuilt a window, not every change: it records nothing."""
    from exports import replication

    if consumed is None or _vars(argv).get("catch_up", True) is False:
        return
    known = replication.model_built_through(settings)
    now_built: dict[str, object] = {}
    for item in getattr(result.result, "results", None) or []:  # in execution order
        node = getattr(item, "node", None)
        if node is None or node.resource_type != "model" or str(item.status) != "success":
            continue
        through = consumed
        for parent in node.depends_on.nodes:
            if parent.startswith("model."):
                name = parent.rsplit(".", 1)[-1]
                parent_time = now_built.get(name, known.get(name))
                if parent_time is None:
                    through = None
                    break
                through = min(through, parent_time)
        if through is not None:
            now_built[node.name] = through
    if now_built:
        replication.record_model_builds(now_built, settings, invocation=getattr(
            getattr(result.result, "args", None), "invocation_id", None))
        through = replication.marts_built_through(settings)
        print(f"payreports: {len(now_built)} models recorded; reports' data available up to {through}",
              file=sys.stderr, flush=True)


def _export_server_profile(url: str) -> None:
    """Set the variables profiles.yml reads from an http(s):// ClickHouse URL."""
    parsed = urlparse(url)
    secure = parsed.scheme == "https"
    os.environ.setdefault("PAYREPORTS_DBT_CLICKHOUSE_HOST", parsed.hostname or "localhost")
    os.environ.setdefault("PAYREPORTS_DBT_CLICKHOUSE_PORT", str(parsed.port or (8443 if secure else 8123)))
    os.environ.setdefault("PAYREPORTS_DBT_CLICKHOUSE_SECURE", "True" if secure else "False")
    if parsed.username:
        os.environ.setdefault("PAYREPORTS_DBT_CLICKHOUSE_USER", parsed.username)
    if parsed.password:
        os.environ.setdefault("PAYREPORTS_DBT_CLICKHOUSE_PASSWORD", parsed.password)


def _patch_adapter_for_chdb(chdb_dir: Path) -> None:
    import clickhouse_connect
    from dbt.adapters.clickhouse import httpclient

    def _create_client(self, credentials):  # noqa: ARG001 - same signature as the original
        chdb_dir.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=f"chdb://{chdb_dir}", settings=self._conn_settings)

    httpclient.ChHttpClient._create_client = _create_client


def run(argv: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    from exports.settings import get_settings
    from exports.warehouse import warehouse_lock

    settings = get_settings()
    os.environ.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR))
    os.environ.setdefault("DBT_PROJECT_DIR", str(PROJECT_DIR))
    os.environ.setdefault("PAYREPORTS_WAREHOUSE_RAW_DATABASE", settings.warehouse_raw_database)
    os.environ.setdefault("PAYREPORTS_WAREHOUSE_MARTS_DATABASE", settings.warehouse_marts_database)
    command = next((a for a in argv if not a.startswith("-")), argv[0] if argv else "--help")
    if argv[:2] == ["docs", "serve"]:
        command = "serve"  # serves target/ files; must not hold the warehouse while it runs

    def invoke() -> int:
        consumed = None
        if command in _BUILDING_COMMANDS:
            from exports import replication

            consumed = replication.replicated_through(settings)  # before dbt reads a raw row
        result = dbtRunner().invoke(argv)
        if result.exception is not None and result.success is False and result.result is None:
            return 2  # dbt's own convention: 2 = dbt could not run, 1 = something failed
        if command in _BUILDING_COMMANDS:
            _record_model_builds(argv, result, consumed, settings)
        return 0 if result.success else 1

    if not settings.warehouse_is_embedded:
        _export_server_profile(settings.resolved_clickhouse_url)
        return invoke()
    if command in _OFFLINE_COMMANDS:
        return invoke()
    _patch_adapter_for_chdb(settings.chdb_dir)
    with warehouse_lock(settings, purpose=f"dbt {command}"):
        return invoke()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
