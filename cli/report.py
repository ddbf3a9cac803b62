"""`payreports report types` and `payreports report run`: the catalog and one report to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from exports.errors import InvalidParameter, ReportingError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Run reports and list report types.")
console = Console()
errors = Console(stderr=True)


def _fail(exc: ReportingError) -> None:
    where = f" ({escape(exc.param)})" if exc.param else ""
    errors.print(f"[bold red]Error{where}:[/] {escape(exc.message)}", highlight=False)
    raise typer.Exit(code=2)


@app.command("types")
def types_command(
    columns: bool = typer.Option(False, "--columns", help="Also list every column of every type."),
) -> None:
    """The report catalog: types, default columns, filters and data availability."""
    from exports.reports.catalog import list_report_types

    entries = list_report_types()
    table = Table(title="Report types", show_lines=True)
    table.add_column("Type", style="bold", no_wrap=True)
    table.add_column("Shape")
    table.add_column("Interval")
    table.add_column("Filters")
    table.add_column("Default columns")
    for entry in entries:
        table.add_row(entry["id"], entry["shape"], entry["interval"], ", ".join(entry["filters"]) or "—",
                      ", ".join(entry["default_columns"]))
    console.print(table)
    end = entries[0]["data_available_end"] if entries else None
    console.print(f"Data available up to: {end.isoformat() if end else 'nothing replicated yet'}")
    if columns:
        for entry in entries:
            detail = Table(title=entry["id"])
            for name in ("Column", "Kind", "Default", "Description"):
                detail.add_column(name)
            for col in entry["columns"]:
                detail.add_row(col["name"], col["kind"], "yes" if col["default"] else "", col["description"])
            console.print(detail)


@app.command("run")
def run_command(
    report_type: str = typer.Option(..., "--type", help="Report type id, e.g. balance.summary."),
    account: str = typer.Option(..., "--account", help="Account id (acct_…)."),
    start: Optional[str] = typer.Option(None, "--from", help="interval_start: date, datetime or Unix seconds."),
    end: Optional[str] = typer.Option(None, "--to", help="interval_end (exclusive)."),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="IANA timezone (default: the account's)."),
    relative: Optional[str] = typer.Option(None, "--relative", help="e.g. yesterday, last_month."),
    currency: Optional[str] = typer.Option(None, "--currency"),
    category: Optional[str] = typer.Option(None, "--category", help="reporting_category filter."),
    payout: Optional[str] = typer.Option(None, "--payout", help="po_… (payout_reconciliation)."),
    customer: Optional[str] = typer.Option(None, "--customer", help="cus_… (payments)."),
    status: Optional[str] = typer.Option(None, "--status", help="Payment status(es), comma-separated."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Comma-separated columns, in order."),
    fmt: str = typer.Option("csv", "--format", help="csv, xlsx, pdf or parquet."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write."),
    gzip: bool = typer.Option(False, "--gzip", help="Gzip the CSV."),
    minor_units: bool = typer.Option(False, "--minor-units",
                                     help="Money as integer minor units (columns named <name>_minor)."),
    bom: bool = typer.Option(False, "--bom", help="CSV: start with a UTF-8 byte order mark (Excel on Windows)."),
    timestamps: str = typer.Option("stripe", "--timestamps",
                                   help="CSV timestamps: stripe (YYYY-MM-DD HH:MM:SS, Stripe's) or "
                                        "iso8601 (with the UTC offset: unambiguous across DST)."),
    locale: Optional[str] = typer.Option(None, "--locale",
                                         help="PDF: numbers and dates in this locale, e.g. de_DE."),
) -> None:
    """Run one report into a file and print its manifest."""
    from exports.money import exponent_of, format_minor
    from exports.reports.engine import account_timezone, generate_report, validate_report_request

    parameters: dict = {"interval_start": start, "interval_end": end, "timezone": timezone,
                        "relative_range": relative, "currency": currency,
                        "reporting_category": category, "payout": payout, "customer": customer,
                        "status": status.split(",") if status and "," in status else status,
                        "columns": columns, "csv_bom": bom or None,
                        "timestamp_format": None if timestamps == "stripe" else timestamps,
                        "locale": locale}
    parameters = {k: v for k, v in parameters.items() if v is not None}
    try:
        # Fail on bad input before waiting for the warehouse, in the account's timezone.
        tz = account_timezone(account)
        validate_report_request(account, report_type, parameters, fmt, account_timezone=tz)
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed:,} rows"), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task(f"{report_type} → {output.name}", total=None)
            manifest = generate_report(
                account, report_type, parameters, fmt, output,
                progress=lambda rows: progress.update(task, completed=rows),
                gzip=gzip, money_format="minor" if minor_units else "major", account_timezone=tz)
    except InvalidParameter as exc:
        _fail(exc)
        return
    except ReportingError as exc:
        _fail(exc)
        return

    summary = Table(title=f"{manifest.report_type} → {manifest.file_name}", show_header=False)
    summary.add_row("Format", manifest.format + (f" ({manifest.compressed})" if manifest.compressed else ""))
    summary.add_row("Rows", f"{manifest.row_count:,}")
    summary.add_row("Bytes", f"{manifest.byte_size:,}")
    summary.add_row("SHA-256", manifest.sha256)
    extra = manifest.extra or {}
    period = interval_text(extra.get("interval_start"), extra.get("interval_end"))
    if period:
        summary.add_row("Interval", f"{period} ({extra.get('timezone')})")
    for figure, per_currency in manifest.totals_minor.items():
        for code, amount in sorted(per_currency.items()):
            exponent = manifest.currency_exponents.get(code)
            if exponent is None:
                try:
                    exponent = exponent_of(code)
                except ValueError:
                    exponent = None
            shown = (f"{amount} (minor units) {code}" if exponent is None
                     else f"{format_minor(amount, exponent)} {code}")
            summary.add_row(figure_label(figure, manifest.columns), shown)
    console.print(summary)


def interval_text(start: str | None, end: str | None) -> str | None:
    """'start → end', 'as of end' for end-only reports (an ending balance), None for neither."""
    if start and end:
        return f"{start} → {end}"
    if end:
        return f"as of {end}"
    if start:
        return f"from {start}"
    return None


def figure_label(figure: str, columns: list[str]) -> str:
    """'Total net' for a column's total; a summary's own figure by its name ('Ending balance')."""
    if figure in columns:
        return f"Total {figure}"
    return figure.replace("_", " ").capitalize()
