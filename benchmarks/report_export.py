"""Export benchmark: our writers against the baselines, all measured in ONE run on this machine.

    python benchmarks/report_export.py [--rows 10000000] [--work /tmp/writers-bench]
        [--skip-build] [--csv-only | --pdf-only]

Builds a deterministic payments-like table (numbers()-based) in a private chdb dir, then runs
every export in its own subprocess (one chdb opener at a time; peak RSS = the child's VmHWM):
  1. ClickHouse `SELECT … INTO OUTFILE … FORMAT CSVWithNames` of the typed query (baseline)
  2. our CSV export, Stripe formatting included                 goal <= 1.3x (1), RSS < 500 MB
     (on chdb: ClickHouse appends to the file itself, a follower thread hashes it as it grows)
     1+2 twice: all rows in one currency (a typical account: money prints as typed Decimals),
     then four currencies with exponents 2/2/0/3 (money printed as text: the worst case);
     then "CSV transport only" lines that split the typical export's cost: no shape/totals
     queries: ClickHouse alone writing the formatted rows (no hashing), then each transport
     (file, the named pipe gzip uses, a server's raw_stream)
  3. naive design: Postgres server-side cursor + csv.writer     goal: (2) >= 8x faster than (3)
     (measured on --naive-rows in the embedded Postgres and scaled linearly to --rows)
  4. 1M-row XLSX, ours vs xlsxwriter constant_memory            goal <= 15 s, RSS < 500 MB
     (xlsxwriter measured on --xlsxwriter-rows and scaled, to spare the shared CPU)
  5. 1,048,576+-row XLSX -> must produce 2 sheets
  6. summary PDF over the whole table                            goal < 3 s
  7. 10k-row itemized PDF                                        goal < 5 s, RSS < 300 MB
     then its renderer alone in a process without the engine (rows saved to a file first),
     as it runs beside a ClickHouse server: the embedded engine alone is ~285 MB of RSS
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CURRENCIES = "['usd', 'eur', 'jpy', 'kwd']"
EXPONENTS = "[2, 2, 0, 3]"


def table_sql(rows: int) -> list[str]:
    return [
        "CREATE DATABASE IF NOT EXISTS bench",
        "DROP TABLE IF EXISTS bench.payments",
        "CREATE TABLE bench.payments (seq UInt64, id String, created DateTime64(6, 'UTC'), "
        "currency String, currency_exponent UInt8, amount Int64, fee Int64, net Int64, "
        "status LowCardinality(String), customer_email String, description String, "
        "account_id String) ENGINE = MergeTree ORDER BY seq",
        "INSERT INTO bench.payments SELECT number, concat('py_', leftPad(hex(number), 16, '0')), "
        "toDateTime64('2024-01-01 00:00:00', 6, 'UTC') + toIntervalMicrosecond(number * 3100000), "
        f"arrayElement({CURRENCIES}, number % 4 + 1), arrayElement({EXPONENTS}, number % 4 + 1), "
        "toInt64(cityHash64(number) % 200000) - 20000 AS a, -toInt64(abs(a) * 29 / 1000 + 30) AS f, a + f, "
        "arrayElement(['succeeded', 'refunded', 'disputed', 'failed'], number % 4 + 1), "
        "concat('cust', toString(number % 50000), '@example.com'), "
        "arrayElement(['Order #' || toString(number), '=cmd|calc', 'Refund, \"partial\"', "
        "'Café ünïcødé', '-discount'], number % 5 + 1), 'acct_bench' "
        f"FROM numbers({rows})",
    ]


def report_query(limit: int | None = None, summary: bool = False, single_currency: bool = False):
    """The benchmark's itemized payments query. `single_currency`: every row in USD, as in a
    typical account's export (money then prints as typed Decimals); otherwise the rows cycle
    through usd/eur/jpy/kwd (exponents 2/2/0/3: money printed as text, the worst case)."""
    from exports.reports.query import Column, ReportQuery

    if summary:
        return ReportQuery(
            report_type="bench.summary", title="Payments by status (benchmark)", shape="summary",
            sql=("SELECT status, count() AS payments, sum(amount) AS amount, sum(fee) AS fee, "
                 "currency, currency AS _currency, any(currency_exponent) AS _exponent "
                 "FROM bench.payments WHERE account_id = {account:String} "
                 "GROUP BY status, currency ORDER BY currency, status"),
            parameters={"account": "acct_bench"},
            columns=(Column("status", "string"), Column("payments", "integer"),
                     Column("amount", "money"), Column("fee", "money"), Column("currency", "string")),
            account_id="acct_bench", chart_label_column="status", chart_value_column="amount")
    where = "account_id = {account:String}" + (" AND seq < {limit:UInt64}" if limit else "")
    currency, exponent = ("'usd'", "toUInt8(2)") if single_currency else ("currency", "currency_exponent")
    params = {"account": "acct_bench", **({"limit": limit} if limit else {})}
    return ReportQuery(
        report_type="bench.itemized", title="Payments (benchmark)", shape="itemized",
        sql=(f"SELECT id, created, amount, fee, net, {currency} AS currency, status, customer_email, "
             f"description, {currency} AS _currency, {exponent} AS _exponent FROM bench.payments "
             f"WHERE {where} ORDER BY seq"),
        parameters=params,
        columns=(Column("id", "string", user_text=False), Column("created", "timestamp"),
                 Column("amount", "money"), Column("fee", "money"), Column("net", "money"),
                 Column("currency", "string", user_text=False),
                 Column("status", "string", user_text=False), Column("customer_email", "string"),
                 Column("description", "string")),
        account_id="acct_bench")


# ------------------------------------------------------------------ child tasks

def child(task: str, args: dict) -> dict:
    import clickhouse_connect

    out = Path(args["out"]) if args.get("out") else None
    if task == "naive":
        return naive_postgres(args)
    if task == "pdf_render":  # no engine in this process, as beside a ClickHouse server
        return pdf_render(args)
    client = clickhouse_connect.get_client(dsn=f"chdb://{args['chdb']}")
    try:
        if task == "build":
            for statement in table_sql(args["rows"]):
                client.command(statement)
            return {"rows": client.query("SELECT count() FROM bench.payments").result_rows[0][0]}
        if task == "idle":  # the fixed cost every child pays: start the engine, run SELECT 1
            client.query("SELECT 1")
            return {}
        if task == "outfile":
            query = report_query(args.get("limit"), single_currency=args.get("single", False))
            out.unlink(missing_ok=True)
            sql = query.sql.replace("{account:String}", "'acct_bench'")
            client.command(f"SELECT * EXCEPT (_currency, _exponent) FROM ({sql}) "
                           f"INTO OUTFILE '{out}' FORMAT CSVWithNames")
            return {}
        if task == "csv_transport":
            return csv_transport(client, args)
        if task == "pdf_rows":
            return pdf_rows(client, args)
        if task == "xlsxwriter":
            return xlsxwriter_baseline(client, args)
        from exports.writers import write_report

        if task == "export":
            query = report_query(args.get("limit"), summary=args.get("summary", False),
                                 single_currency=args.get("single", False))
            manifest = write_report(client, query, args["fmt"], out)
            return {"rows": manifest.row_count, "bytes": manifest.byte_size, "sheets": manifest.sheets}
    finally:
        client.close()
    raise ValueError(task)


def csv_transport(client, args: dict) -> dict:
    """Only the CSV rows' way from the engine to the hashed file: no shape/totals queries."""
    from exports.writers.csv_writer import (CsvBody, copy_through_pipe, copy_through_stream,
                                            formatted_select, write_through_file)
    from exports.writers.manifest import HashingFile, Progress, QueryFacts, query_columns

    single = args.get("single", False)
    query = report_query(args.get("limit"), single_currency=single)
    names, types = query_columns(client, query)  # LIMIT 0: computes nothing
    facts = QueryFacts(names, types, 0, {}, {}, frozenset({2} if single else {0, 2, 3}))
    label = "payreports-export benchmark"
    sql = formatted_select(query, facts, log_comment=label)
    out = Path(args["out"])
    if args["transport"] == "engine":  # ClickHouse alone writes the formatted rows: no hashing
        client.command(f"{sql} INTO OUTFILE '{out}' FORMAT CSV", parameters=query.parameters)
    elif args["transport"] == "file":
        write_through_file(client, sql, query.parameters, out, b"", progress=Progress(None), row_count=0,
                           log_comment=label)
    else:
        with HashingFile(out) as sink:
            body = CsvBody(sink, gzip=False, progress=Progress(None), row_count=0)
            if args["transport"] == "pipe":
                copy_through_pipe(client, sql, query.parameters, body, log_comment=label)
            else:
                copy_through_stream(client, sql, query.parameters, body)
    return {"bytes": out.stat().st_size}


def pdf_rows(client, args: dict) -> dict:
    """The itemized PDF's facts and formatted rows, saved for `pdf_render` (JSON lines)."""
    from exports.writers.manifest import inspect_query
    from exports.writers.pdf_writer import Presenter, _widest_values, itemized_sql

    query = report_query(args["limit"])
    facts = inspect_query(client, query)
    widest = _widest_values(client, query, facts, Presenter(query.locale))
    rows = 0
    with open(args["rows_file"], "w") as fh:
        fh.write(json.dumps({**facts.__dict__, "row_exponents": sorted(facts.row_exponents),
                             "quoted_codes": None if facts.quoted_codes is None
                             else sorted(facts.quoted_codes), "widest": widest}) + "\n")
        with client.query_row_block_stream(itemized_sql(query, facts),
                                           parameters=query.parameters) as blocks:
            for block in blocks:
                for row in block:
                    fh.write(json.dumps(row) + "\n")
                rows += len(block)
    return {"rows": rows}


def pdf_render(args: dict) -> dict:
    """The itemized PDF renderer alone: rows read from `pdf_rows`' file in blocks, the way a
    ClickHouse server's stream hands them over; its RSS is what the writer itself needs."""
    from itertools import islice

    from exports.writers.manifest import Progress, QueryFacts
    from exports.writers.pdf_layout import plan_itemized_layout
    from exports.writers.pdf_writer import render_itemized_rows

    with open(args["rows_file"]) as fh:
        saved = json.loads(fh.readline())
        widest = saved.pop("widest")
        facts = QueryFacts(**{**saved, "column_names": tuple(saved["column_names"]),
                              "column_types": tuple(saved["column_types"]),
                              "row_exponents": frozenset(saved["row_exponents"]),
                              "quoted_codes": None if saved["quoted_codes"] is None
                              else frozenset(saved["quoted_codes"])})

        def blocks():
            while block := [json.loads(line) for line in islice(fh, 8192)]:
                yield block

        query = report_query(args["limit"])
        rows = render_itemized_rows(query, facts, blocks(), Path(args["out"]), Progress(None),
                                    layout=plan_itemized_layout(query.columns, widest))
    return {"rows": rows}


def xlsxwriter_baseline(client, args: dict) -> dict:
    """The obvious library design: Native row blocks -> xlsxwriter constant_memory, typed cells."""
    import xlsxwriter

    query = report_query(args["limit"])
    book = xlsxwriter.Workbook(args["out"], {"constant_memory": True})
    sheet = book.add_worksheet()
    money = {e: book.add_format({"num_format": "#,##0" + ("." + "0" * e if e else "")}) for e in (0, 2, 3)}
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, [c.name for c in query.columns])
    row_number = 1
    with client.query_row_block_stream(query.sql, parameters=query.parameters) as blocks:
        for block in blocks:
            for row in block:
                exp = row[10]
                scale = 10 ** exp
                sheet.write_string(row_number, 0, row[0])
                sheet.write_datetime(row_number, 1, row[1].replace(tzinfo=None), stamp)
                for col in (2, 3, 4):
                    sheet.write_number(row_number, col, row[col] / scale, money[exp])
                for col in (5, 6, 7, 8):
                    sheet.write_string(row_number, col, row[col])
                row_number += 1
    book.close()
    return {"rows": row_number - 1}


def naive_postgres(args: dict) -> dict:
    """The naive design: rows in Postgres, a server-side cursor, csv.writer formatting in Python."""
    import csv

    import psycopg

    from exports.money import format_minor

    with psycopg.connect(args["pg_url"]) as conn, open(args["out"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "created", "amount", "fee", "net", "currency", "status",
                         "customer_email", "description"])
        with conn.cursor(name="export") as cursor:
            cursor.itersize = 10_000
            cursor.execute("SELECT id, created, amount, fee, net, currency, exponent, status, "
                           "customer_email, description FROM bench_payments ORDER BY seq")
            rows = 0
            for r in cursor:
                exp = r[6]
                writer.writerow([r[0], r[1].strftime("%Y-%m-%d %H:%M:%S"), format_minor(r[2], exp),
                                 format_minor(r[3], exp), format_minor(r[4], exp), r[5], r[7], r[8],
                                 r[9]])
                rows += 1
    return {"rows": rows}


def run_child(task: str, **args) -> dict:
    """Run one task in a fresh interpreter; return its result + wall time + peak RSS (MB)."""
    # Same start for every child: its output file removed (writing a GB into memory the VM has
    # just freed was measured ~4x cheaper than into pages it has not touched yet, so a writer
    # that replaces an existing file would otherwise pay ~1.5 s more than one that deletes it
    # first), and the previous child's dirty pages flushed (its writeback swung timings by 2x).
    if args.get("out"):
        Path(args["out"]).unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", task, json.dumps(args)],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = result.get("seconds", elapsed)
    return result


def child_main(task: str, payload: str) -> None:
    args = json.loads(payload)
    started = time.perf_counter()
    result = child(task, args)
    result["seconds"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds (all threads): what a loaded VM's wall time cannot show.
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    # The peak RSS of this process's own memory map. Not ru_maxrss: Linux carries the parent's
    # high-water mark over fork+exec, so every child would report at least the parent's RSS
    # (which holds the engine once the naive baseline's data has been exported).
    result["rss_mb"] = int(status["VmHWM"].split()[0]) / 1024
    # How much of the RSS is file-backed (mostly the pages of chdb's 550 MB library the engine
    # has executed: shared and evictable, not memory the writer holds) at the end of the task.
    result["file_mb"] = int(status["RssFile"].split()[0]) / 1024
    print(json.dumps(result))


# ------------------------------------------------------------------ naive baseline data

def load_postgres(chdb_dir: str, work: Path, rows: int) -> str:
    """Copy the first `rows` rows into the embedded Postgres (own state dir/port); return its URL."""
    import clickhouse_connect
    import psycopg

    from exports.services import postgres as embedded
    from exports.settings import Settings

    settings = Settings(state_dir=work / "pg-state",
                        embedded_postgres_port=int(os.environ.get("BENCH_PG_PORT", "54391")))
    embedded.ensure_running(settings)
    url = embedded.server_url(settings, "postgres")
    csv_path = work / "naive-source.tsv"
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_dir}")
    try:
        csv_path.unlink(missing_ok=True)
        client.command(f"SELECT seq, id, created, amount, fee, net, currency, currency_exponent, status, "
                       f"customer_email, description FROM bench.payments WHERE seq < {rows} "
                       f"INTO OUTFILE '{csv_path}' FORMAT CSV")
    finally:
        client.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_payments")
        conn.execute("CREATE TABLE bench_payments (seq bigint primary key, id text, created timestamptz, "
                     "amount bigint, fee bigint, net bigint, currency text, exponent int, status text, "
                     "customer_email text, description text)")
        with conn.cursor() as cur, cur.copy("COPY bench_payments FROM STDIN WITH (FORMAT csv)") as copy:
            with open(csv_path, "rb") as fh:
                while block := fh.read(1 << 20):
                    copy.write(block)
        conn.execute("ANALYZE bench_payments")
    return url, settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--naive-rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=1_000_000)
    parser.add_argument("--xlsxwriter-rows", type=int, default=250_000)
    parser.add_argument("--split-rows", type=int, default=1_048_600)
    parser.add_argument("--work", type=Path, default=Path("/tmp/writers-bench"))
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="CSV runs per line (best kept)")
    parser.add_argument("--csv-only", action="store_true", help="stop after the CSV lines (0-2)")
    parser.add_argument("--pdf-only", action="store_true", help="only the PDF lines (6-7)")
    opts = parser.parse_args()
    work = opts.work
    work.mkdir(parents=True, exist_ok=True)
    chdb = str(work / "clickhouse")
    results: list[tuple[str, str, str]] = []

    def note(name, value, verdict=""):
        results.append((name, value, verdict))
        print(f"{name:<48} {value:<40} {verdict}", flush=True)

    if not opts.skip_build:
        built = run_child("build", chdb=chdb, rows=opts.rows)
        note("build table", f"{built['rows']:,} rows in {built['seconds']:.1f}s")

    idle = run_child("idle", chdb=chdb)
    note("0. engine start + SELECT 1 (fixed cost)",
         f"{idle['seconds']:.2f}s cpu {idle['cpu_s']:.2f}s rss {idle['rss_mb']:.0f}MB ({idle['file_mb']:.0f}MB file-backed)",
         "(every child below includes this; RSS goals judged on the delta too)")
    if opts.pdf_only:
        pdf_steps(run_child, note, chdb, work, idle)
        return
    # Baseline and export alternate, best of --repeat each: this VM's timings swing by +-30%.
    def fastest(runs: list[dict]) -> dict:
        return min(runs, key=lambda r: r["seconds"])

    def best_of(task: str, **args) -> dict:
        return fastest([run_child(task, **args) for _ in range(opts.repeat)])

    def csv_pair(single: bool) -> tuple[dict, dict]:
        base, ours = [], []
        for _ in range(opts.repeat):
            base.append(run_child("outfile", chdb=chdb, single=single, out=str(work / "baseline.csv")))
            ours.append(run_child("export", chdb=chdb, fmt="csv", single=single, out=str(work / "ours.csv")))
        return fastest(base), fastest(ours)

    for single, label in ((True, "one currency (typical account)"),
                          (False, "usd/eur/jpy/kwd mixed (worst case)")):
        base, ours = csv_pair(single)
        ratio = ours["seconds"] / base["seconds"]
        note(f"1. INTO OUTFILE CSVWithNames, {label}", f"{base['seconds']:.2f}s rss {base['rss_mb']:.0f}MB",
             "(the baseline)")
        note("2. our CSV export (chdb: file transport)", f"{ours['seconds']:.2f}s rss {ours['rss_mb']:.0f}MB, {ratio:.2f}x baseline",
             f"goal <=1.3x & <500MB: {'MET' if ratio <= 1.3 and ours['rss_mb'] < 500 else 'NOT MET'}")
        if single:
            single_base = base
        else:
            mixed_ours = ours
    base = single_base
    for transport, label in (("engine", "ClickHouse alone writes it, no sha256"),
                             ("file", "file + follower sha256 (default)"),
                             ("pipe", "named pipe + sha256 (gzip's path)"),
                             ("stream", "raw_stream + sha256 (server path)")):
        part = best_of("csv_transport", chdb=chdb, transport=transport, single=True,
                       out=str(work / f"transport-{transport}.csv"))
        note(f"   one currency, CSV transport only: {label}",
             f"{part['seconds']:.2f}s, {part['seconds'] / base['seconds']:.2f}x baseline",
             f"{part['bytes'] / part['seconds'] / 1e6:.0f} MB/s")

    if opts.csv_only:
        return

    url, pg_settings = load_postgres(chdb, work, opts.naive_rows)
    try:
        naive = run_child("naive", pg_url=url, out=str(work / "naive.csv"))
    finally:
        from exports.services import postgres as embedded
        embedded.stop(pg_settings)
    naive_scaled = naive["seconds"] * opts.rows / opts.naive_rows
    speedup = naive_scaled / mixed_ours["seconds"]  # the naive code formats the same mixed rows
    note("3. naive PG cursor + csv.writer",
         f"{naive['seconds']:.2f}s/{opts.naive_rows:,} -> {naive_scaled:.1f}s scaled",
         f"ours (mixed) {speedup:.1f}x faster, goal >=8x: {'MET' if speedup >= 8 else 'NOT MET'}")

    xlsx = run_child("export", chdb=chdb, fmt="xlsx", limit=opts.xlsx_rows, out=str(work / "ours.xlsx"))
    xw = run_child("xlsxwriter", chdb=chdb, limit=opts.xlsxwriter_rows, out=str(work / "xlsxwriter.xlsx"))
    xw_scaled = xw["seconds"] * opts.xlsx_rows / opts.xlsxwriter_rows
    note(f"4. XLSX {opts.xlsx_rows:,} rows (ours)",
         f"{xlsx['seconds']:.2f}s rss {xlsx['rss_mb']:.0f}MB, {xw_scaled / xlsx['seconds']:.1f}x faster",
         f"goal <=15s & <500MB: {'MET' if xlsx['seconds'] <= 15 and xlsx['rss_mb'] < 500 else 'NOT MET'}")
    note("   xlsxwriter constant_memory baseline",
         f"{xw['seconds']:.2f}s/{opts.xlsxwriter_rows:,} -> {xw_scaled:.1f}s scaled, rss {xw['rss_mb']:.0f}MB")

    split = run_child("export", chdb=chdb, fmt="xlsx", limit=opts.split_rows, out=str(work / "split.xlsx"))
    note(f"5. XLSX {opts.split_rows:,} rows", f"{split['sheets']} sheets, {split['seconds']:.2f}s rss {split['rss_mb']:.0f}MB",
         f"goal 2 sheets: {'MET' if split['sheets'] == 2 else 'NOT MET'}")

    pdf_steps(run_child, note, chdb, work, idle)


def pdf_steps(run_child, note, chdb: str, work: Path, idle: dict) -> None:
    summary = run_child("export", chdb=chdb, fmt="pdf", summary=True, out=str(work / "summary.pdf"))
    net = summary["seconds"] - idle["seconds"]
    note("6. summary PDF (aggregates whole table)", f"{summary['seconds']:.2f}s ({net:.2f}s net) cpu {summary['cpu_s']:.2f}s rss {summary['rss_mb']:.0f}MB",
         f"goal <3s: {'MET' if summary['seconds'] < 3 else 'NET MET' if net < 3 else 'NOT MET'}")
    pdf = run_child("export", chdb=chdb, fmt="pdf", limit=10_000, out=str(work / "itemized.pdf"))
    note("7. itemized PDF 10,000 rows", f"{pdf['seconds']:.2f}s cpu {pdf['cpu_s']:.2f}s rss {pdf['rss_mb']:.0f}MB",
         f"goal <5s & <300MB: {'MET' if pdf['seconds'] < 5 and pdf['rss_mb'] < 300 else 'NOT MET'}"
         f" (over idle engine: {pdf['rss_mb'] - idle['rss_mb']:.0f}MB; not file-backed: "
         f"{pdf['rss_mb'] - pdf['file_mb']:.0f}MB)")
    rows_file = str(work / "itemized-rows.jsonl")
    run_child("pdf_rows", chdb=chdb, limit=10_000, rows_file=rows_file)
    alone = run_child("pdf_render", limit=10_000, rows_file=rows_file, out=str(work / "itemized-alone.pdf"))
    note("   the same PDF's renderer alone (no engine in its process, as beside a server)",
         f"{alone['seconds']:.2f}s cpu {alone['cpu_s']:.2f}s rss {alone['rss_mb']:.0f}MB",
         f"goal <5s & <300MB: {'MET' if alone['seconds'] < 5 and alone['rss_mb'] < 300 else 'NOT MET'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
