"""orchestration/dagster_internals.py is the one module that touches Dagster's private modules:
every internal it relies on is checked here against the installed (exactly pinned) Dagster, so an
upgrade that moves one fails here, loudly and by name, not in a run or as silently doubled
latency. No other module of the project imports `dagster._*`."""

from __future__ import annotations

import ast
import inspect

import dagster

from exports.settings import REPO_ROOT
from orchestration import dagster_internals as internals


def test_checked_against_the_installed_dagster():
    assert dagster.__version__ == internals.CHECKED_AGAINST_DAGSTER, (
        f"Dagster is {dagster.__version__}; re-read orchestration/dagster_internals.py against it "
        "(run worker body, launcher plumbing, daemon constants), then update CHECKED_AGAINST_DAGSTER")


def test_the_run_worker_body_matches_dagster_api_execute_run():
    from dagster._cli import api

    assert list(inspect.signature(api._execute_run_command_body).parameters) == [
        "run_id", "instance", "write_stream_fn", "set_exit_code_on_failure"]
    # `dagster api execute_run` = get_instance_for_cli + _execute_run_command_body, as ours.
    source = inspect.getsource(api.execute_run_command.callback)
    assert "get_instance_for_cli(instance_ref=args.instance_ref)" in source
    assert "_execute_run_command_body(" in source
    assert {"run_id", "instance_ref", "job_origin"} <= set(internals.ExecuteRunArgs._fields)


def test_the_daemon_constants_exist_and_are_what_the_daemon_reads():
    sensor_daemon, daemon_controller = internals.daemon_modules()
    assert isinstance(sensor_daemon.MIN_INTERVAL_LOOP_TIME, (int, float))
    assert "MIN_INTERVAL_LOOP_TIME" in inspect.getsource(sensor_daemon)
    assert daemon_controller.RELOAD_WORKSPACE_INTERVAL == 60  # the pinned version's default
    source = inspect.getsource(daemon_controller.DagsterDaemonController.check_workspace_freshness)
    assert "RELOAD_WORKSPACE_INTERVAL" in source


def test_the_daemon_entry_point_sets_a_one_second_loop_and_a_rare_reload(monkeypatch):
    from orchestration import daemon

    sensor_daemon, daemon_controller = internals.daemon_modules()
    monkeypatch.setattr(sensor_daemon, "MIN_INTERVAL_LOOP_TIME", 5)
    monkeypatch.setattr(daemon_controller, "RELOAD_WORKSPACE_INTERVAL", 60)
    called = {}
    import dagster._daemon.cli as cli

    def fake_main():
        called["loop"] = sensor_daemon.MIN_INTERVAL_LOOP_TIME
        called["reload"] = daemon_controller.RELOAD_WORKSPACE_INTERVAL
        return 0

    monkeypatch.setattr(cli, "main", fake_main)
    assert daemon.main() == 0
    assert called["loop"] == daemon.SENSOR_LOOP_SECONDS == 1
    assert called["reload"] == daemon.WORKSPACE_RELOAD_SECONDS >= 600


def test_no_other_module_imports_dagster_internals():
    offenders = []
    for root in ("exports", "orchestration", "api", "cli", "benchmarks"):
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            if path == REPO_ROOT / "orchestration" / "dagster_internals.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(name.startswith("dagster._") for name in names):
                    offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


def test_dagster_postgres_storages_keep_the_engine_and_settings_use_pooled_engine_replaces():
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    for storage_class in (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage):
        init = inspect.getsource(storage_class.__init__)
        for needed in ("self._engine = create_pg_engine(", "self.postgres_url =",
                       "self._token_provider ="):
            assert needed in init, (
                f"{storage_class.__name__}.__init__ no longer has `{needed}`: re-read "
                "use_pooled_engine / dispose_storage_engine and orchestration/storage.py")
        assert "self._engine = create_pg_engine(" in inspect.getsource(
            storage_class.optimize_for_webserver)
