"""`payreports ui`: the Dagster webserver and daemon on this project's instance, supervised.

Both run as subprocesses against $DAGSTER_HOME prepared from the repo's dagster.yaml (Postgres
run/event/schedule storage: the embedded server unless PAYREPORTS_DAGSTER_DATABASE_URL is set),
so runs queued by the API's sensor, `payreports ops backfill|refresh` or the UI all share one queue.
Each child runs in its own process group; when one dies, its group (the code servers and run
workers it started) is stopped and it is restarted with backoff — the other keeps serving.
Logs go to <state dir>/logs, never $DAGSTER_HOME/logs (Dagster's telemetry spool, see
exports/dagster_home.py). This module does not import Dagster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer

from exports.settings import REPO_ROOT, get_settings

STOP_GRACE_SECONDS = 20
# A process that dies is restarted after 1 s, 2 s, 4 s ... (capped); one that stayed up this long
# counts as healthy again. Dying MAX_RESTARTS times within RESTART_WINDOW_SECONDS means something
# is broken for good: everything is stopped and `ui` exits 1.
RESTART_BACKOFF_SECONDS = (1, 2, 4, 8, 15, 30)
STABLE_SECONDS = 60
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 300


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when nobody is left in it."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def group_members(pgid: int) -> list[int]:
    """Live members of a process group, from /proc. Zombies do not count: an orphan that died
    is reparented to PID 1, which in a container may never reap it. OSError without /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def _group_has_live_members(pgid: int) -> bool:
    """Whether a process group still has a running (not zombie) member."""
    if not _signal_group(pgid, 0):
        return False
    try:
        return bool(group_members(pgid))
    except OSError:  # no /proc (not Linux): trust the signal check
        return True


def _stop_group(proc: subprocess.Popen, deadline: float, *, interrupt: bool = True) -> None:
    """SIGINT the process's whole group (Dagster shuts down its gRPC code servers and run
    workers on it) — also when the leader already died, so its children do not linger — then
    SIGKILL whatever is still there at the deadline."""
    if interrupt:
        _signal_group(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    while _group_has_live_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_has_live_members(proc.pid):
        _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _stop(processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in processes:
        _signal_group(proc.pid, signal.SIGINT)
    for proc in processes:
        _stop_group(proc, deadline, interrupt=False)


@dataclass
class Supervised:
    """One child of `ui`, restarted with backoff when it dies."""

    name: str
    command: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    recent_exits: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        with open(self.log_path, "ab") as log:
            # Own process group: Ctrl-C reaches only us, and we stop each child with its children.
            self.proc = subprocess.Popen(self.command, cwd=REPO_ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            log.write(f"=== payreports ui: {self.name} started at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
                      f" (pid {self.proc.pid}) ===\n".encode())
        self.started_at, self.restart_at = time.monotonic(), None

    def reap_if_exited(self) -> int | None:
        """The exit code when the process died since the last check (its group is stopped)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        _stop_group(self.proc, time.monotonic() + STOP_GRACE_SECONDS)  # its orphaned children
        self.proc = None
        now = time.monotonic()
        if now - self.started_at >= STABLE_SECONDS:
            self.recent_exits.clear()
        self.recent_exits = [t for t in self.recent_exits if now - t < RESTART_WINDOW_SECONDS] + [now]
        backoff = RESTART_BACKOFF_SECONDS[min(len(self.recent_exits), len(RESTART_BACKOFF_SECONDS)) - 1]
        self.restart_at = now + backoff
        return code

    @property
    def gave_up(self) -> bool:
        return len(self.recent_exits) >= MAX_RESTARTS


def ui_commands(host: str, port: int, workspace: Path) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    return {
        # The project's daemon entry point: Dagster's daemon with a 1 s sensor loop (see
        # orchestration/daemon.py); the on-demand latency depends on it.
        "dagster-daemon": [sys.executable, "-m", "orchestration.daemon", "run", "-w", str(workspace)],
        "dagster-webserver": [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(port),
                              "-w", str(workspace)],
    }


def ui(host: str = typer.Option("127.0.0.1", help="Interface for the webserver."),
       port: int = typer.Option(3000, help="Webserver port."),
       workspace: Path = typer.Option(REPO_ROOT / "workspace.yaml", help="Dagster workspace file.")
       ) -> None:
    """Start the Dagster daemon and webserver on this project's instance and keep them up
    (a process that dies is restarted with backoff); Ctrl-C stops both with their children."""
    from exports.dagster_home import prepare_dagster_home

    settings = get_settings()
    env = {**os.environ, **prepare_dagster_home(settings)}
    logs_dir = settings.logs_dir
    logs_dir.mkdir(parents=True, exist_ok=True)
    children = [Supervised(name, command, logs_dir / f"{name}.log")
                for name, command in ui_commands(host, port, workspace).items()]
    stopping = False

    def _request_stop(signum, frame):  # SIGTERM (e.g. from a supervisor) acts like Ctrl-C
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, _request_stop)
    # Started in the background of a non-interactive shell (`nohup payreports ui &`, a CI
    # script), a process inherits SIGINT ignored: `ui` would not stop on SIGINT, and its
    # children, which Dagster shuts down cleanly on SIGINT, would only stop when killed.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for child in children:
            child.start(env)
        typer.echo(f"Dagster UI: http://{host}:{port}  (DAGSTER_HOME={env['DAGSTER_HOME']}, "
                   f"logs in {logs_dir}); Ctrl-C stops the webserver and the daemon.")
        while True:
            for child in children:
                code = child.reap_if_exited()
                if code is not None:
                    if child.gave_up:
                        typer.echo(f"{child.name} exited with {code} {len(child.recent_exits)} times "
                                   f"within {RESTART_WINDOW_SECONDS}s; giving up, see {child.log_path}",
                                   err=True)
                        raise typer.Exit(1)
                    typer.echo(f"{child.name} exited with {code}; restarting it in "
                               f"{child.restart_at - time.monotonic():.0f}s (see {child.log_path})",
                               err=True)
                elif child.proc is None and child.restart_at is not None \
                        and time.monotonic() >= child.restart_at:
                    child.start(env)
                    typer.echo(f"{child.name} restarted (pid {child.proc.pid})", err=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        stopping = True
    finally:
        if stopping:
            typer.echo("stopping the webserver and the daemon ...")
        _stop([child.proc for child in children if child.proc is not None])
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def validate(workspace: Path = typer.Option(REPO_ROOT / "workspace.yaml", help="Dagster workspace file.")
             ) -> None:
    """`dagster definitions validate` on this project's instance (env prepared like `ui`)."""
    from exports.dagster_home import prepare_dagster_home

    env = {**os.environ, **prepare_dagster_home()}
    command = [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(workspace)]
    raise typer.Exit(subprocess.run(command, cwd=REPO_ROOT, env=env).returncode)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
    app.command("validate")(validate)
