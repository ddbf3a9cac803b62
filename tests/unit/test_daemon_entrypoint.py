"""The project's daemon entry point shortens Dagster's sensor loop by setting a module constant of
the pinned Dagster version; if an upgrade renames or removes it, this fails loudly instead of the
latency silently doubling."""

import inspect

import dagster._daemon.controller as daemon_controller
import dagster._daemon.sensor as sensor_daemon

from orchestration import daemon


def test_the_sensor_loop_constant_exists_and_is_what_the_daemon_loop_reads():
    assert isinstance(sensor_daemon.MIN_INTERVAL_LOOP_TIME, (int, float))
    assert "MIN_INTERVAL_LOOP_TIME" in inspect.getsource(sensor_daemon)


def test_the_workspace_reload_constant_exists_and_is_what_the_controller_reads():
    assert daemon_controller.RELOAD_WORKSPACE_INTERVAL == 60  # the pinned version's default
    source = inspect.getsource(daemon_controller.DagsterDaemonController.check_workspace_freshness)
    assert "RELOAD_WORKSPACE_INTERVAL" in source


def test_entrypoint_sets_a_one_second_loop_and_a_rare_workspace_reload(monkeypatch):
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
