"""`payreports ui`: the Dagster webserver and daemon on this project's instance.

Both run as subprocesses against $DAGSTER_HOME prepared from the repo's dagster.yaml (Postgres
run/event/schedule storage: the embedded server unless PAYREPORTS_DAGSTER_DATABASE_URL is set),
so runs queued by the API's sensor, `payreports ops backfill` or the UI all share one queue.
This module does not import Dagster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

from exports.settings import REPO_ROOT

STOP_GRACE_SECONDS = 20


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGINT each process group (Dagster shuts down its gRPC children on it), then SIGKILL
    whatever is still there after the grace period."""
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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
    """Start the Dagster daemon and webserver on this project's instance; Ctrl-C stops both."""
    from exports.dagster_home import prepare_dagster_home

    env = {**os.environ, **prepare_dagster_home()}
    logs_dir = Path(env["DAGSTER_HOME"]) / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    stopping = False

    def _request_stop(signum, frame):  # SIGTERM (e.g. from a supervisor) acts like Ctrl-C
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, _request_stop)
    try:
        for name, command in ui_commands(host, port, workspace).items():
            log = open(logs_dir / f"{name}.log", "ab")
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        typer.echo(f"Dagster UI: http://{host}:{port}  (DAGSTER_HOME={env['DAGSTER_HOME']}, "
                   f"logs in {logs_dir}); Ctrl-C stops the webserver and the daemon.")
        while True:
            for proc, name in zip(processes, ui_commands(host, port, workspace)):
                if proc.poll() is not None:
                    typer.echo(f"{name} exited with {proc.returncode}; see {logs_dir / (name + '.log')}",
                               err=True)
                    raise typer.Exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        stopping = True
    finally:
        if stopping:
            typer.echo("stopping the webserver and the daemon ...")
        _stop(processes)
        signal.signal(signal.SIGTERM, previous_term)


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
