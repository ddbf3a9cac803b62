"""`payreports ops ...`: operator commands for the report queue, backfills and retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import typer

from exports.errors import InvalidParameter, ReportingError
from exports.settings import REPO_ROOT, get_settings

app = typer.Typer(no_args_is_help=True, help="Operate the reporting system: queue, retry, "
                  "backfill, retention.")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


@app.command()
def queue(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Pending and processing requests now, failed/completed in the last 24 h, oldest pending age."""
    from exports.metrics import queue_summary

    summary = queue_summary(get_settings())
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"pending:              {summary['pending']}")
    typer.echo(f"processing:           {summary['processing']}")
    typer.echo(f"failed (last 24 h):   {summary['failed']}")
    typer.echo(f"completed (last 24 h): {summary['completed']}")
    typer.echo(f"oldest pending age:   {_age(summary['oldest_pending_age_seconds'])}")


# Kept here until exports/requests/store.py grows the same transition (see store's docstring:
# it owns report_requests' SQL); one conditional UPDATE, so a concurrent retry cannot double it.
_RETRY_SQL = """
UPDATE report_requests
SET status = 'pending', attempt_count = 0, error_message = NULL, progress = 0,
    started_at = NULL, completed_at = NULL, dagster_run_id = NULL, updated_at = now()
WHERE id = %s AND status = 'failed'
RETURNING id, account_id, report_type, format
"""


def retry_failed(request_id: str, settings=None) -> dict:
    """failed -> pending with attempts reset and the error cleared; the report sensor picks it
    up like a new request. Any other status is an error naming it."""
    from exports import db
    from exports.requests import store

    with db.connect("app", settings or get_settings(), autocommit=True, dict_rows=True) as conn:
        row = conn.execute(_RETRY_SQL, (request_id,)).fetchone()
    if row is None:
        current = store.get(request_id, settings=settings)  # NotFound when missing
        raise InvalidParameter(f"report {request_id} is {current['status']}; only failed reports "
                               "can be retried", param="REPORT_ID")
    return row


@app.command()
def retry(report_id: str = typer.Argument(..., metavar="REPORT_ID",
                                          help="The failed request's id (rpt_...).")) -> None:
    """Put a failed report back in the queue (attempts reset, error cleared)."""
    try:
        row = retry_failed(report_id)
    except ReportingError as exc:
        _fail(exc.message)
    typer.echo(f"{row['id']} is pending again ({row['report_type']}, {row['format']})")


def _parse_day(value: str, param: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(f"{param} must be a date like 2024-01-31, got {value!r}",
                               param=param) from None


def backfill_launch_command(start: str, end: str, settings=None) -> list[str]:
    """The `dagster job launch` command that queues platform_refresh for [start, end]."""
    first, last = _parse_day(start, "--from"), _parse_day(end, "--to")
    if last < first:
        raise InvalidParameter("--to must not be before --from", param="--to")
    if last > date.today():
        raise InvalidParameter("--to must not be in the future", param="--to")
    settings = settings or get_settings()
    tags = {
        "warehouse": "embedded" if settings.warehouse_is_embedded else "server",
        "payreports/backfill_from": first.isoformat(),
        "payreports/backfill_to": last.isoformat(),
        # platform_refresh is day-partitioned: one run over the range (its BackfillPolicy batches).
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
        "payreports/source": "ops-backfill",
    }
    dagster = Path(sys.executable).parent / "dagster"
    return [str(dagster), "job", "launch", "-w", str(REPO_ROOT / "workspace.yaml"),
            "-l", "platform", "-j", "platform_refresh", "--tags", json.dumps(tags)]


@app.command()
def backfill(start: str = typer.Option(..., "--from", help="First day (YYYY-MM-DD), inclusive."),
             end: str = typer.Option(..., "--to", help="Last day (YYYY-MM-DD), inclusive.")) -> None:
    """Queue a platform_refresh run (replication + marts) for a date range through Dagster.
    The Dagster daemon (`payreports ui`, or the stack's dagster-daemon) starts it."""
    from exports.dagster_home import prepare_dagster_home

    try:
        command = backfill_launch_command(start, end)
    except ReportingError as exc:
        _fail(exc.message)
    env = prepare_dagster_home()  # the same instance (Postgres run storage) as the daemon
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, **env})
    if result.returncode != 0:
        _fail(f"dagster could not queue platform_refresh:\n{result.stdout}{result.stderr}")
    typer.echo(result.stdout.strip() or f"queued platform_refresh for {start}..{end}")


@app.command("expire-now")
def expire_now() -> None:
    """Run retention now: delete report files past expires_at, mark their requests expired."""
    from exports.requests.retention import expire_reports

    expired = expire_reports(get_settings())
    typer.echo(f"expired {len(expired)} report(s)")
    for request_id in expired:
        typer.echo(f"  {request_id}")
