"""`payreports ui`'s supervision without Dagster: a child that dies has its orphaned children
stopped with it and is restarted with growing backoff; one that keeps dying is given up on."""

from __future__ import annotations

import os
import time

from exports.cli import stack


def group_alive(pgid: int, timeout: float = 5) -> bool:
    """Whether the group still has a running member shortly after a SIGKILL."""
    deadline = time.monotonic() + timeout
    while stack._group_has_live_members(pgid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def wait_exited(child: stack.Supervised, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (code := child.reap_if_exited()) is None:
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.05)
    return code


def test_a_dead_childs_orphans_are_stopped_and_it_restarts_with_backoff(tmp_path, monkeypatch):
    # (A background `sleep` of a non-interactive sh ignores SIGINT: it takes the SIGKILL.)
    monkeypatch.setattr(stack, "STOP_GRACE_SECONDS", 0.5)
    # The leader exits at once and leaves a grandchild behind, like a daemon's code server.
    child = stack.Supervised("flaky", ["sh", "-c", "sleep 300 & exit 3"], tmp_path / "flaky.log")
    delays = []
    for _ in range(stack.MAX_RESTARTS):
        child.start(dict(os.environ))
        pgid = child.proc.pid
        assert wait_exited(child) == 3
        assert not group_alive(pgid), "the orphaned grandchild outlived its parent"
        delays.append(round(child.restart_at - time.monotonic()))
    assert delays == list(stack.RESTART_BACKOFF_SECONDS[:stack.MAX_RESTARTS])
    assert child.gave_up
    log = (tmp_path / "flaky.log").read_text()
    assert log.count("=== payreports ui: flaky started at") == stack.MAX_RESTARTS


def test_stop_ends_the_whole_group_of_a_running_child(tmp_path, monkeypatch):
    monkeypatch.setattr(stack, "STOP_GRACE_SECONDS", 0.5)
    child = stack.Supervised("steady", ["sh", "-c", "sleep 300 & sleep 300"], tmp_path / "steady.log")
    child.start(dict(os.environ))
    time.sleep(0.2)
    stack._stop([child.proc])
    assert not group_alive(child.proc.pid)
