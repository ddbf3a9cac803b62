"""`payreports demo | replicate | sql | services`: the demo platform, replication, analyst SQL and
the embedded services.

`demo` runs the `platform_refresh` job through Dagster on the project's instance (so the run is in
the UI's history); Dagster is imported lazily, only by the commands that need it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from exports import db, replication
from exports.money import format_minor
from exports.settings import Settings, get_settings
from exports.warehouse import WarehouseBusy, open_warehouse

console = Console()

DEMO_PAYMENTS = 200_000
DEMO_DAYS = 120


@dataclass
class CurrencyTotals:
    currency: str
    exponent: int
    source_net_minor: int
    mart_net_minor: int
    source_count: int
    mart_count: int
    source_gross_minor: int = 0
    mart_gross_minor: int = 0

    @property
    def matches(self) -> bool:
        return (self.source_net_minor, self.source_gross_minor, self.source_count) == (
            self.mart_net_minor, self.mart_gross_minor, self.mart_count)


@dataclass
class SampleReport:
    path: Path
    report_type: str
    account_id: str
    row_count: int
    byte_size: int
    totals: str  # e.g. "net: usd 1234.56"


# What the demo renders for its busiest account: one of each family and format, over the last
# complete month in the account's own timezone (the way a finance team would ask for it).
DEMO_REPORTS: tuple[tuple[str, str, dict], ...] = (
    ("balance.summary", "pdf", {}),
    ("balance_change_from_activity.itemized", "csv", {}),
    ("payout_reconciliation.itemized", "xlsx", {}),
    ("revenue.summary", "pdf", {}),
    ("payments.itemized", "parquet", {}),
    ("fees.summary", "csv", {}),
)


@dataclass
class DemoSummary:
    generated: bool  # False: the platform existed and recent rows were mutated instead
    raw_rows: dict[str, int] = field(default_factory=dict)
    totals: list[CurrencyTotals] = field(default_factory=list)
    data_available_end: datetime | None = None
    run_id: str | None = None
    run_succeeded: bool = False
    seconds: float = 0.0
    reports: list[SampleReport] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return bool(self.totals) and all(t.matches for t in self.totals)


def _source_is_empty(settings: Settings) -> bool:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT NOT EXISTS (SELECT 1 FROM payments)").fetchone()[0]


def run_platform_refresh(settings: Settings) -> tuple[str, bool]:
    """Execute `platform_refresh` in this process against the project's Dagster instance."""
    from exports.dagster_home import prepare_dagster_home

    prepare_dagster_home(settings)
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.platform.partitions import latest_partition_key

    job = defs().resolve_job_def("platform_refresh")
    with dg.DagsterInstance.get() as instance:
        # Today's partition: it applies every change since the last build (partitions.py).
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        partition_key=latest_partition_key())
    return result.run_id, result.success


def collect_summary(settings: Settings, summary: DemoSummary) -> DemoSummary:
    with db.connect("source", settings) as conn:
        source = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in conn.execute(
            "SELECT currency, count(*), sum(net), sum(amount) FROM balance_transactions GROUP BY currency")}
    marts = settings.warehouse_marts_database
    with open_warehouse(settings, purpose="demo summary") as client:
        for table in replication.REPLICATED_TABLES:
            summary.raw_rows[table] = int(client.query(
                f"SELECT count() FROM {replication.raw_table(table, settings)} FINAL").result_rows[0][0])
        mart = {row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in client.query(
            f"SELECT currency, count(), sum(net_minor), any(currency_exponent), sum(gross_minor) "
            f"FROM `{marts}`.fct_balance_transactions GROUP BY currency").result_rows}
    for currency in sorted(set(source) | set(mart)):
        s_count, s_net, s_gross = source.get(currency, (0, 0, 0))
        m_count, m_net, exponent, m_gross = mart.get(currency, (0, 0, 2, 0))
        summary.totals.append(CurrencyTotals(currency, exponent, s_net, m_net, s_count, m_count,
                                             s_gross, m_gross))
    summary.data_available_end = replication.data_available_end(settings)
    return summary


def run_demo(settings: Settings | None = None, *, payments: int = DEMO_PAYMENTS, days: int = DEMO_DAYS,
             seed: int = 42) -> DemoSummary:
    """Services up, migrated, a demo platform (generated once, then mutated), platform_refresh
    through Dagster, and the reconciliation summary."""
    from exports.services import postgres as embedded
    from exports.source.generator import generate_platform
    from exports.source.mutations import mutate_recent

    settings = settings or get_settings()
    started = time.monotonic()
    with console.status("Starting embedded services and migrating…"):
        if settings.uses_embedded_postgres:
            embedded.ensure_running(settings)
        db.migrate("source", settings)
        db.migrate("app", settings)
    summary = DemoSummary(generated=_source_is_empty(settings))
    if summary.generated:
        with console.status(f"Generating a demo platform: {payments:,} payments over {days} days…"):
            generate_platform(settings, seed=seed, payments=payments, days=days)
    else:
        with console.status("Platform exists: refunding and settling recent activity…"):
            mutate_recent(settings, seed=int(time.time()))
    from exports.cli.quiet import captured_output

    with captured_output(console, settings, "platform_refresh") as log_path, \
            console.status("Running platform_refresh (replication → dbt build → checks) in Dagster…"):
        summary.run_id, summary.run_succeeded = run_platform_refresh(settings)
    console.print(f"platform_refresh: Dagster and dbt output in {log_path}")
    with console.status("Reconciling marts with the source…"):
        collect_summary(settings, summary)
    if summary.run_succeeded:
        with console.status("Rendering sample reports…"):
            summary.reports = render_sample_reports(settings)
    summary.seconds = time.monotonic() - started
    return summary


def _busiest_account(settings: Settings) -> str:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT account_id FROM payments GROUP BY account_id "
                            "ORDER BY count(*) DESC, account_id LIMIT 1").fetchone()[0]


def render_sample_reports(settings: Settings, account_id: str | None = None) -> list[SampleReport]:
    """Render DEMO_REPORTS for one account into <files dir>/demo/, through the same engine the
    API and Dagster use, holding the warehouse once for all of them."""
    from exports.reports.engine import generate_report

    account_id = account_id or _busiest_account(settings)
    out_dir = settings.files_dir / "demo" / account_id
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = []
    with open_warehouse(settings, purpose="demo sample reports") as client:
        for report_type, fmt, extra in DEMO_REPORTS:
            path = out_dir / f"{report_type}.last_month.{fmt}"
            manifest = generate_report(account_id, report_type, {"relative_range": "last_month", **extra},
                                       fmt, path, settings=settings, client=client)
            # Summaries' rows are balances, flows or include total rows: no grand total to show.
            totals = "" if not report_type.endswith(".itemized") else "; ".join(
                f"{column}: " + ", ".join(f"{cur} {format_minor(v, manifest.currency_exponents[cur])}"
                                          for cur, v in sorted(per.items()))
                for column, per in list(manifest.totals_minor.items())[:2])
            rendered.append(SampleReport(path, report_type, account_id, manifest.row_count,
                                         manifest.byte_size, totals))
    return rendered


def print_demo_summary(summary: DemoSummary) -> None:
    rows = Table(title="Raw tables (rows, FINAL)")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for table, count in summary.raw_rows.items():
        rows.add_row(table, f"{count:,}")
    console.print(rows)
    totals = Table(title="Balance transactions per currency: marts vs source (net is ~0 once paid out)")
    for name in ("currency", "transactions", "mart gross", "source gross", "mart net", "source net", "match"):
        totals.add_column(name, justify="right" if name != "currency" else "left")
    for t in summary.totals:
        totals.add_row(t.currency, f"{t.mart_count:,}", format_minor(t.mart_gross_minor, t.exponent),
                       format_minor(t.source_gross_minor, t.exponent),
                       format_minor(t.mart_net_minor, t.exponent),
                       format_minor(t.source_net_minor, t.exponent), "[green]yes" if t.matches else "[red]NO")
    console.print(totals)
    console.print(f"Dagster run {summary.run_id}: "
                  + ("[green]succeeded" if summary.run_succeeded else "[red]failed (see ./run ui)"))
    console.print(f"Data available up to: {summary.data_available_end}")
    if summary.reports:
        reports = Table(title=f"Sample reports for {summary.reports[0].account_id} (last month, account timezone)")
        for name in ("file", "rows", "bytes", "totals (itemized)"):
            reports.add_column(name, justify="right" if name in ("rows", "bytes") else "left")
        for r in summary.reports:
            reports.add_row(r.path.name, f"{r.row_count:,}", f"{r.byte_size:,}", r.totals)
        console.print(reports)
        console.print(f"Files in {summary.reports[0].path.parent}")
    console.print(f"Done in {summary.seconds:.0f}s.")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(payments: int = typer.Option(DEMO_PAYMENTS, help="Payments to generate on first run."),
             days: int = typer.Option(DEMO_DAYS, help="Days of history to generate on first run."),
             seed: int = typer.Option(42)) -> None:
        """Start services, generate (or refresh) a demo platform, replicate and build the marts."""
        summary = run_demo(payments=payments, days=days, seed=seed)
        print_demo_summary(summary)
        from exports.cli.users import print_demo_next_steps

        print_demo_next_steps(console, get_settings(),
                              summary.reports[0].account_id if summary.reports else None)
        if not (summary.run_succeeded and summary.reconciled and summary.reports):
            raise typer.Exit(1)

    @app.command()
    def replicate() -> None:
        """Pull new and changed source rows into the warehouse's raw tables."""
        settings = get_settings()
        table = Table(title="Replication")
        for name in ("table", "rows pulled", "mode", "watermark", "seconds"):
            table.add_column(name)
        with console.status("Replicating…"), open_warehouse(settings, purpose="cli replicate") as client:
            results = replication.sync_all(client, settings)
        for r in results:
            table.add_row(r.table, f"{r.rows_pulled:,}", "full" if r.full_load else "incremental",
                          r.watermark.isoformat(), f"{r.seconds:.2f}")
        console.print(table)
        # Reports read the marts: replicated rows become reportable when dbt rebuilds them.
        end = replication.data_available_end(settings)
        console.print(f"Replicated through {replication.replicated_through(settings)}; data available "
                      f"to reports up to {end or 'nothing yet'} (the marts). Run `payreports dbt build` "
                      "(or the platform_refresh job) to make the replicated rows reportable.")

    @app.command()
    def sql(query: str = typer.Argument(..., help="A SELECT on the marts, e.g. "
                                        "\"SELECT * FROM analytics.dim_accounts LIMIT 5\""),
            limit: int = typer.Option(100, help="Rows to show at most.")) -> None:
        """Run an analyst query on the warehouse and print a table."""
        settings = get_settings()
        try:
            with open_warehouse(settings, purpose="cli sql", wait_seconds=0) as client:
                client.database = settings.warehouse_marts_database
                result = client.query(query)
        except WarehouseBusy as exc:
            console.print(f"[yellow]The warehouse is busy:[/yellow] {exc}")
            raise typer.Exit(2) from None
        except Exception as exc:  # the engine's message is what an analyst needs
            console.print(f"[red]Query failed:[/red] {exc}")
            raise typer.Exit(1) from None
        table = Table(show_lines=False)
        for name in result.column_names:
            table.add_column(name)
        for row in result.result_rows[:limit]:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        shown = min(limit, len(result.result_rows))
        console.print(f"{shown} of {len(result.result_rows)} rows")

    services_app = typer.Typer(help="Embedded services (Postgres).", no_args_is_help=True)

    @services_app.command("start")
    def services_start() -> None:
        from exports.services import postgres as embedded

        settings = get_settings()
        url = embedded.ensure_running(settings)
        db.migrate("source", settings)
        db.migrate("app", settings)
        console.print(f"Postgres running at {url}; warehouse at {settings.resolved_clickhouse_url}")

    @services_app.command("stop")
    def services_stop() -> None:
        from exports.services import postgres as embedded

        embedded.stop(get_settings())
        console.print("Postgres stopped")

    @services_app.command("status")
    def services_status() -> None:
        from exports.services import postgres as embedded
        from exports.warehouse import describe_holder, warehouse_lock

        settings = get_settings()
        running = embedded.is_running(settings)
        console.print(f"Postgres (port {settings.embedded_postgres_port}): "
                      + ("[green]running" if running else "[red]stopped"))
        try:
            with warehouse_lock(settings, purpose="status", wait_seconds=0):
                console.print(f"Warehouse {settings.resolved_clickhouse_url}: idle")
        except WarehouseBusy:
            console.print(f"Warehouse {settings.resolved_clickhouse_url}: in use by {describe_holder(settings)}")
        if running:
            end = replication.data_available_end(settings)
            console.print(f"Data available up to: {end or 'not replicated yet'}")

    app.add_typer(services_app, name="services")
