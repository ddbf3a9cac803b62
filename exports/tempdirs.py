"""Scratch directories of workers, and removing the ones a killed worker left behind.

Every scratch dir lives under one root (settings.temp_dir, default <system temp>/payreports-<uid>,
mode 0700, refused if another user owns it) and is named `<prefix>.p<pid>.s<start>.<random>`:
the owning process id and its start time (so a recycled pid is not mistaken for the owner).
A worker removes its dir when it finishes; one that is SIGKILLed or OOM-killed cannot, so the
first scratch dir a process creates first sweeps the root (`clean_stale`): dirs whose owner is
gone, and any older than settings.stale_temp_max_age_hours — plus, once that old, the dirs earlier
versions left directly in the system temp dir. The retention job sweeps too.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exports.settings import Settings, get_settings

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<prefix>.*)\.p(?P<pid>\d+)\.s(?P<start>\d+|x)\.[0-9a-f]+$")
# What versions before this module left directly in the system temp dir (owner unknown: removed
# once older than the maximum age).
_LEGACY_NAME = re.compile(r"^(rpt_[A-Za-z0-9]{24}-|payreports-csv-)[a-z0-9_]{8}$")
_swept_roots: set[Path] = set()


def temp_root(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    root = settings.temp_dir or Path(tempfile.gettempdir()) / f"payreports-{os.getuid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(root)
    # In a shared /tmp another user could have created (or symlinked) the name first.
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(f"{root} is not a directory owned by this user; set PAYREPORTS_TEMP_DIR")
    if info.st_mode & 0o077:
        os.chmod(root, 0o700)
    return root


def process_start_ticks(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, Linux /proc), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22 of stat(5); [0] here is field 3
    except (OSError, IndexError):
        return None


def _owner_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    if start == "x":
        return True
    return process_start_ticks(pid) in (None, start)


@contextmanager
def work_dir(prefix: str, settings: Settings | None = None) -> Iterator[Path]:
    """A fresh private scratch dir (0700) under the root, removed on exit."""
    settings = settings or get_settings()
    root = temp_root(settings)
    if root not in _swept_roots:
        _swept_roots.add(root)
        clean_stale(settings)
    pid = os.getpid()
    name = f"{prefix.rstrip('-.')}.p{pid}.s{process_start_ticks(pid) or 'x'}.{secrets.token_hex(4)}"
    path = root / name
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_stale(settings: Settings | None = None, *, now: float | None = None) -> list[Path]:
    """Remove scratch dirs whose owning process is gone or that are older than the maximum
    age; return what was removed."""
    settings = settings or get_settings()
    root = temp_root(settings)
    now = now if now is not None else time.time()
    max_age = settings.stale_temp_max_age_hours * 3600
    removed = []
    for entry in root.iterdir():
        match = _NAME.match(entry.name)
        try:
            age = now - entry.lstat().st_mtime
        except FileNotFoundError:
            continue
        stale = age > max_age or (match is not None
                                  and not _owner_alive(int(match["pid"]), match["start"]))
        if not stale:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    system_temp = Path(tempfile.gettempdir())
    for entry in system_temp.iterdir() if system_temp != root else ():
        try:
            info = entry.lstat()
        except FileNotFoundError:
            continue
        if (_LEGACY_NAME.match(entry.name) and stat.S_ISDIR(info.st_mode)
                and info.st_uid == os.getuid() and now - info.st_mtime > max_age):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.info("removed %d stale scratch dirs (%s)", len(removed), root)
    return removed
