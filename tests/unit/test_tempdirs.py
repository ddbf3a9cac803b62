"""Scratch dirs a killed worker leaves behind are swept: by the next worker's first scratch dir
and by the retention job; a live worker's dir is kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from exports import tempdirs
from exports.settings import REPO_ROOT, Settings

@pytest.fixture(autouse=True)
def private_system_temp(tmp_path, monkeypatch):
    """clean_stale also sweeps the system temp dir: never let a test sweep the machine's /tmp."""
    system_temp = tmp_path / "system-tmp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    return system_temp


KILLED_WORKER = """
import os, signal
from exports.tempdirs import work_dir
with work_dir("rpt_killed") as path:
    (path / "partial.csv").write_text("half a report")
    print(path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def run_killed_worker(temp_root) -> str:
    env = {**os.environ, "PAYREPORTS_TEMP_DIR": str(temp_root), "PYTHONPATH": str(REPO_ROOT),
           "TMPDIR": tempfile.gettempdir()}  # the test's private one (see private_system_temp)
    proc = subprocess.run([sys.executable, "-c", KILLED_WORKER], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()


def test_a_killed_workers_dir_is_removed_by_the_next_worker(tmp_path):
    root = tmp_path / "scratch"
    left = run_killed_worker(root)
    assert os.path.isdir(left) and os.path.dirname(left) == str(root)
    settings = Settings(temp_dir=root)
    tempdirs._swept_roots.discard(root)
    with tempdirs.work_dir("rpt_next", settings) as mine:
        assert not os.path.exists(left)
        assert mine.is_dir() and oct(mine.stat().st_mode & 0o777) == "0o700"
    assert not mine.exists()
    assert oct(root.stat().st_mode & 0o777) == "0o700"


def test_live_dirs_stay_and_dead_reused_or_old_ones_go(tmp_path):
    settings = Settings(temp_dir=tmp_path / "scratch", stale_temp_max_age_hours=24)
    root = tempdirs.temp_root(settings)
    me = os.getpid()
    live = root / f"rpt_live.p{me}.s{tempdirs.process_start_ticks(me)}.abcd"
    reused = root / f"rpt_reused.p{me}.s1.abcd"  # our pid, but another process's start time
    sleeper = subprocess.Popen([sys.executable, "-c", "pass"])
    sleeper.wait()
    dead = root / f"rpt_dead.p{sleeper.pid}.sx.abcd"
    old = root / "something-else-from-an-older-version"
    for path in (live, reused, dead, old):
        path.mkdir()
    two_days_ago = time.time() - 48 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    removed = tempdirs.clean_stale(settings)
    assert sorted(removed) == sorted([reused, dead, old])
    assert live.is_dir()
    assert tempdirs.clean_stale(settings, now=time.time() + 25 * 3600) == [live]


def test_dirs_left_in_the_system_temp_dir_by_earlier_versions_go_once_old(tmp_path, private_system_temp):
    system_temp = private_system_temp
    settings = Settings(temp_dir=tmp_path / "scratch")
    old_run = system_temp / "rpt_abcdefghijklmnopqrstuvwx-k2j4_9zq"
    old_fifo = system_temp / "payreports-csv-a1b2c3d4"
    recent_run = system_temp / "rpt_ABCDEFGHIJKLMNOPQRSTUVWX-aaaaaaaa"
    unrelated = system_temp / "someone-elses-dir"
    for path in (old_run, old_fifo, recent_run, unrelated):
        path.mkdir()
    two_days_ago = time.time() - 48 * 3600
    for path in (old_run, old_fifo, unrelated):
        os.utime(path, (two_days_ago, two_days_ago))
    assert sorted(tempdirs.clean_stale(settings)) == sorted([old_run, old_fifo])
    assert recent_run.is_dir() and unrelated.is_dir()
