"""The project's daemon entry point shortens Dagster's sensor loop by setting a module constant of
the pinned Dagster version; if an upgrade renames or removes it, this fails loudly instead of the
latency silently doubling."""

import dagster._daemon.sensor as sensor_daemon

from orchestration import daemon


def test_the_sensor_loop_constant_exists_and_is_what_the_daemon_loop_reads():
    assert isinstance(sensor_daemon.MIN_INTERVAL_LOOP_TIME, (int, float))
    import inspect

    assert "MIN_INTERVAL_LOOP_TIME" in inspect.getsource(sensor_daemon)


def test_entrypoint_sets_a_one_second_loop(monkeypatch):
    monkeypatch.setattr(sensor_daemon, "MIN_INTERVAL_LOOP_TIME", 5)
    called = {}
    import dagster._daemon.cli as cli

    monkeypatch.setattr(cli, "main", lambda: called.setdefault("loop", sensor_daemon.MIN_INTERVAL_LOOP_TIME) and 0)
    assert daemon.main() == 0
    assert called["loop"] == daemon.SENSOR_LOOP_SECONDS == 1
