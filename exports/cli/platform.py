"""`payreports demo | replicate | sql | services`: the demo platform, replication, analyst SQL and
the embedded services.

`demo` runs the `platform_refresh` job through Dagster on the project's instance (so the run is in
the UI's history); Dagster is imported lazily, only by the commands that need it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

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

    @property
    def matches(self) -> bool:
        return self.source_net_minor == self.mart_net_minor and self.source_count == self.mart_count


@dataclass
class DemoSummary:
    generated: bool  # False: the platform existed and recent rows were mutated instead
    raw_rows: dict[str, int] = field(default_factory=dict)
    totals: list[CurrencyTotals] = field(default_factory=list)
    data_available_end: datetime | None = None
    run_id: str | None = None
    run_succeeded: bool = False
    seconds: float = 0.0

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

    job = defs().resolve_job_def("platform_refresh")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    return result.run_id, result.success


def collect_summary(settings: Settings, summary: DemoSummary) -> DemoSummary:
    with db.connect("source", settings) as conn:
        source = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(
            "SELECT currency, count(*), sum(net) FROM balance_transactions GROUP BY currency")}
    marts = settings.warehouse_marts_database
    with open_warehouse(settings, purpose="demo summary") as client:
        for table in replication.REPLICATED_TABLES:
            summary.raw_rows[table] = int(client.query(
                f"SELECT count() FROM {replication.raw_table(table, settings)} FINAL").result_rows[0][0])
        mart = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in client.query(
            f"SELECT currency, count(), sum(net_minor), any(currency_exponent) "
            f"FROM `{marts}`.fct_balance_transactions GROUP BY currency").result_rows}
    for currency in sorted(set(source) | set(mart)):
        s_count, s_net = source.get(currency, (0, 0))
        m_count, m_net, exponent = mart.get(currency, (0, 0, 2))
        summary.totals.append(CurrencyTotals(currency, exponent, s_net, m_net, s_count, m_count))
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
    with console.status("Running platform_refresh (replication → dbt build → checks) in Dagster…"):
        summary.run_id, summary.run_succeeded = run_platform_refresh(settings)
    with console.status("Reconciling marts with the source…"):
        collect_summary(settings, summary)
    summary.seconds = time.monotonic() - started
    return summary


def print_demo_summary(summary: DemoSummary) -> None:
    rows = Table(title="Raw tables (rows, FINAL)")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for table, count in summary.raw_rows.items():
        rows.add_row(table, f"{count:,}")
    console.print(rows)
    totals = Table(title="Net balance per currency: marts vs source")
    for name in ("currency", "transactions", "mart net", "source net", "match"):
        totals.add_column(name, justify="right" if name != "currency" else "left")
    for t in summary.totals:
        totals.add_row(t.currency, f"{t.mart_count:,}", format_minor(t.mart_net_minor, t.exponent),
                       format_minor(t.source_net_minor, t.exponent), "[green]yes" if t.matches else "[red]NO")
    console.print(totals)
    console.print(f"Dagster run {summary.run_id}: "
                  + ("[green]succeeded" if summary.run_succeeded else "[red]failed (see ./run ui)"))
    console.print(f"Data available up to: {summary.data_available_end}")
    console.print(f"Done in {summary.seconds:.0f}s. Open the Dagster UI with [bold]./run ui[/bold].")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(payments: int = typer.Option(DEMO_PAYMENTS, help="Payments to generate on first run."),
             days: int = typer.Option(DEMO_DAYS, help="Days of history to generate on first run."),
             seed: int = typer.Option(42)) -> None:
        """Start services, generate (or refresh) a demo platform, replicate and build the marts."""
        summary = run_demo(payments=payments, days=days, seed=seed)
        print_demo_summary(summary)
        if not (summary.run_succeeded and summary.reconciled):
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
