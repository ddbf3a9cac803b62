"""A first run that reads clean: third-party chatter goes to a log file, not the terminal.

`quiet_warnings()` drops the warnings a newcomer cannot act on (Dagster's preview/beta notices
for APIs this project chose on purpose, platformdirs' runtime-dir fallback); `captured_output`
sends everything written to the process's stdout/stderr file descriptors — including child
processes such as dbt — to a log while a step runs, keeping the spinner on the terminal.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from rich.console import Console

from exports.settings import Settings

_NOISE = (r".*is currently in (preview|beta)", r".*XDG_RUNTIME_DIR")


def quiet_warnings() -> None:
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)


@contextmanager
def captured_output(console: Console, settings: Settings, name: str) -> Iterator[Path]:
    """Redirect fds 1 and 2 to <state>/logs/<name>-<time>.log for the block; `console` keeps
    writing to the terminal. Yields the log's path."""
    log_dir = settings.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_out), "w", buffering=1)
    previous_file = console.file
    console.file = terminal
    try:
        with open(log_path, "ab", buffering=0) as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield log_path
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved_out, 1)
                os.dup2(saved_err, 2)
    finally:
        console.file = previous_file
        terminal.close()
        os.close(saved_out)
        os.close(saved_err)
