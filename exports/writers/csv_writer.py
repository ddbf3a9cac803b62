"""CSV: formatted inside ClickHouse, written straight to the file.

The typed report SQL is wrapped as `SELECT <field expressions> FROM (<query.sql>)`, so every
field leaves the engine exactly as it appears in the file: formatted text, or a typed number
whose CSV text already is the format (integers, and money when all rows share one exponent,
i.e. nearly every single-currency export: ~2x cheaper per cell than building a string).
Three transports carry the rows to our file:

- embedded engine (chdb, same process, same file system), "file": ClickHouse appends them to
  our temp file itself (`INTO OUTFILE '<tmp>' APPEND FORMAT CustomSeparated`, after our header),
  while a follower thread maps the file as it grows (its page cache, no copy) to hash it and
  count rows for progress. Nothing crosses a pipe or the client, which matters on 2 cores where every
  copy costs CPU the engine needs: per 10M rows, 4.1 s vs 5.0 s for "pipe" and 9.0 s for
  "stream" in the last benchmark runs (in noisier runs file and pipe were within noise).
- embedded engine with gzip, "pipe": ClickHouse writes into a named pipe in a private temp dir
  and a reader thread compresses, hashes and writes (chdb releases the GIL).
- ClickHouse server, "stream": its file system is not ours, so `raw_stream(fmt=CustomSeparated)`
  (streamed block by block by both backends when the call carries no per-query settings).

On the embedded engine the export query carries a `log_comment` label; if the follower or
reader fails (a cancelled report's progress callback raises), a second connection KILLs the
query by that label, so a cancel stops the engine within seconds instead of after the last row.

A small report (a summary, or an account known to be small: `ReportQuery.rows_bound`) skips
all of that: `write_small_csv` reads its finished lines and totals in one query (formatRow in
the same format and settings, so the same bytes) and falls back to the streamed path when it
finds more rows than it may hold.

Memory stays bounded and we write the header ourselves (CSVWithNames would be buffered whole
by chdb). All transports produce byte-identical files.

Output: RFC 4180, UTF-8 (a BOM only when asked: `bom`), LF line endings, a header row of the
report's column names (money columns in minor units are named `<name>_minor`); a field is
quoted only when it holds a comma, quote or line break, as in Stripe's files and Python's
csv.QUOTE_MINIMAL (csv_field builds each field's final text; ClickHouse prints it raw).
Timestamps as Stripe prints them, or ISO 8601 with the offset (`timestamp_style`). Optional gzip
via a streaming zlib compressor.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import mmap
import os
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from exports.reports.query import ACCOUNT_COLUMN, Manifest, ReportQuery
from exports.writers.manifest import (Digest, HashingFile, Progress, QueryFacts, atomic_output,
                                      build_manifest, code_indexes, facts_from_rows,
                                      figure_row_sql, money_indexes, query_columns)
from exports.writers.formatting import DEFAULT_TIMESTAMP_STYLE, column_headers
from exports.writers.sqlformat import (CSV_FIELD_SETTINGS, CSV_OUTPUT_FORMAT, CURRENCY_COLUMN,
                                       EXPONENT_COLUMN, csv_field, ident, sql_string)

try:  # the embedded backend's client class (absent from clickhouse-connect builds without chdb)
    from clickhouse_connect.driver._chdbclient import ChdbClient as _EmbeddedClient
except ImportError:  # pragma: no cover
    _EmbeddedClient = None

log = logging.getLogger(__name__)

Transport = Literal["file", "pipe", "stream"]

READ_CHUNK_BYTES = 1 << 20
# How often the file follower looks again when it has caught up with ClickHouse.
FOLLOW_POLL_SECONDS = 0.02
# How much of the file it maps at a time. 1 MiB hashes as fast as larger windows (an mmap and
# munmap per MiB is noise next to the hash) and keeps progress (and so a cancel) as fine-grained
# as on the other transports.
FOLLOW_WINDOW_BYTES = READ_CHUNK_BYTES
# A 1 MiB pipe (Linux's default pipe-max-size) instead of 64 KiB: fewer engine/reader wake-ups.
PIPE_BUFFER_BYTES = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# Level 1: ~5x faster than the default 6 for ~15% larger files; CSV exports are big.
GZIP_LEVEL = 1
# Opt-in (csv_bom): Excel on Windows reads a UTF-8 file without it as ANSI ("Chloé" -> "ChloÃ©").
UTF8_BOM = b"\xef\xbb\xbf"


def csv_fields(query: ReportQuery, facts: QueryFacts, *,
               money_format: Literal["major", "minor"] = "major",
               timestamp_style: str = DEFAULT_TIMESTAMP_STYLE) -> list[str]:
    """Per report column, the expression printing it as its CSV field (see csv_field)."""
    money = money_indexes(query)
    return [csv_field(facts.column_sql(index), column, facts.column_types[index],
                      money_format=money_format, row_exponents=facts.row_exponents,
                      check_exponent=bool(money) and index == money[0],
                      timestamp_style=timestamp_style, only_field=len(query.columns) == 1,
                      quote=None if column.user_text or facts.quoted_codes is None
                      else index in facts.quoted_codes)
            for index, column in enumerate(query.columns)]


def formatted_select(query: ReportQuery, facts: QueryFacts, *,
                     money_format: Literal["major", "minor"] = "major",
                     timestamp_style: str = DEFAULT_TIMESTAMP_STYLE,
                     log_comment: str | None = None) -> str:
    """The report SQL wrapped so every output column prints as its CSV field (see csv_field),
    in CSV_OUTPUT_FORMAT. `log_comment` labels the query in system.processes / query_log (and
    lets us KILL it)."""
    fields = csv_fields(query, facts, money_format=money_format, timestamp_style=timestamp_style)
    exprs = [f"{field} AS {ident(f'c{index}')}" for index, field in enumerate(fields)]
    label = f", log_comment = {sql_string(log_comment)}" if log_comment else ""
    return f"SELECT {', '.join(exprs)} FROM ({query.sql}) SETTINGS {CSV_FIELD_SETTINGS}{label}"


def header_line(names: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerow(names)
    return buffer.getvalue().encode("utf-8")





def default_transport(client: Client, *, gzip: bool = False) -> Transport:
    """When the engine runs in this process and so shares our file system: 'file' (it writes
    the file itself), or 'pipe' for gzip (we compress what it writes into a pipe). A server:
    'stream'."""
    if _EmbeddedClient is not None and isinstance(client, _EmbeddedClient):
        return "pipe" if gzip else "file"
    return "stream"


class RowEstimate:
    """Rows of a CSV stream seen so far, for progress only. Newlines are counted in the first
    SAMPLE_BYTES; after that rows are estimated from bytes at the sampled bytes per row, since
    counting every newline costs as much CPU as the sha256 (~1.5 GB/s), on cores the engine
    needs. The exact count comes from the totals query at the end."""

    SAMPLE_BYTES = 4 << 20

    def __init__(self) -> None:
        self._bytes = 0
        self._sample_bytes = 0
        self._sample_rows = 0

    def add(self, chunk: bytes | memoryview) -> int:
        """Account for `chunk`; returns the estimated number of rows so far."""
        self._bytes += len(chunk)
        if self._sample_bytes < self.SAMPLE_BYTES:
            self._sample_bytes += len(chunk)
            self._sample_rows += bytes(chunk).count(b"\n")
            return self._sample_rows
        return self._bytes * self._sample_rows // self._sample_bytes


class CsvBody:
    """Where the CSV bytes go: optional gzip, then `sink` (a HashingFile, or only a Digest when
    ClickHouse writes the file itself); estimates rows for progress, never past `row_count`."""

    def __init__(self, sink: Digest, *, gzip: bool, progress: Progress, row_count: int):
        self._sink = sink
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None
        self._progress = progress
        self._row_count = row_count
        self._rows = RowEstimate()

    def write(self, data: bytes | memoryview) -> None:
        if self._compressor is None:
            self._sink.write(data)
        else:
            compressed = self._compressor.compress(data)
            if compressed:
                self._sink.write(compressed)

    def write_rows(self, chunk: bytes | memoryview) -> None:
        self.write(chunk)
        progress = self._progress
        rows = min(self._rows.add(chunk), self._row_count)
        if rows > progress.rows:
            progress.advance(rows - progress.rows)

    def finish(self) -> None:
        if self._compressor is not None:
            self._sink.write(self._compressor.flush())


def write_csv(client: Client, query: ReportQuery, facts: QueryFacts, out_path: Path, *,
              progress: Progress, gzip: bool, money_format: Literal["major", "minor"],
              transport: Transport | None = None, bom: bool = False,
              timestamp_style: str = DEFAULT_TIMESTAMP_STYLE) -> Manifest:
    """`transport` defaults to `default_transport(client, gzip=gzip)`; tests force each one.
    `bom`: start the file with a UTF-8 byte order mark (for Excel on Windows); `timestamp_style`:
    a formatting.TIMESTAMP_STYLES key ('iso8601' adds the UTC offset)."""
    transport = transport or default_transport(client, gzip=gzip)
    if transport not in ("file", "pipe", "stream"):
        raise ValueError(f"unknown CSV transport {transport!r}")
    if transport == "file" and gzip:
        raise ValueError("the 'file' CSV transport writes uncompressed files; gzip uses 'pipe'")
    log_comment = f"payreports-export {uuid.uuid4().hex}"
    sql = formatted_select(query, facts, money_format=money_format,
                           timestamp_style=timestamp_style, log_comment=log_comment)
    names = column_headers(query.columns, money_format)
    header = _header(names, bom)
    with atomic_output(out_path) as tmp:
        if transport == "file":
            byte_size, sha256 = write_through_file(client, sql, query.parameters, tmp, header,
                                                   progress=progress, row_count=facts.row_count,
                                                   log_comment=log_comment)
        else:
            def feed(body: CsvBody) -> None:
                if transport == "pipe":
                    copy_through_pipe(client, sql, query.parameters, body, log_comment=log_comment)
                else:
                    copy_through_stream(client, sql, query.parameters, body)

            byte_size, sha256 = _write_body(tmp, header, feed, gzip=gzip, progress=progress,
                                            row_count=facts.row_count)
    progress.finish(facts.row_count)
    return _csv_manifest(query, out_path, facts, byte_size=byte_size, sha256=sha256, gzip=gzip,
                         columns=names, money_format=money_format,
                         timestamp_style=timestamp_style, bom=bom)


def small_csv_sql(query: ReportQuery, names: tuple[str, ...], types: tuple[str, ...], *,
                  max_rows: int, money_format: Literal["major", "minor"],
                  timestamp_style: str = DEFAULT_TIMESTAMP_STYLE,
                  batch: ReportQuery | None = None) -> str:
    """write_small_csv's one query: per row its finished line (formatRow in CSV_OUTPUT_FORMAT:
    the same bytes the streamed export prints), what it adds to each of the totals' figures, its
    currency and exponent; at most `max_rows` + 1 rows. With nothing known in advance, money is
    formatted per row's exponent and every code column is quote-checked, which gives the same
    text as the typed paths.

    `batch`: the same report over many accounts (QueryContext.account_ids): the same columns per
    row, then its account, at most `max_rows` + 1 rows per account (small_csv_rows_by_account).
    `names`, `types`: the query's shape (query_columns)."""
    codes = frozenset(code_indexes(query))
    provisional = QueryFacts(names, types, 0, {}, {}, frozenset(), codes)
    fields = csv_fields(query, provisional, money_format=money_format,
                        timestamp_style=timestamp_style)
    figures = figure_row_sql(query, names)
    account = f", {ident(ACCOUNT_COLUMN)}" if batch is not None else ""
    limit = f"LIMIT {int(max_rows) + 1}" + (f" BY {ident(ACCOUNT_COLUMN)}" if batch is not None else "")
    return (f"SELECT formatRow({sql_string(CSV_OUTPUT_FORMAT)}, {', '.join(fields)}), "
            f"{''.join(f'{expr}, ' for expr in figures)}"
            f"{ident(CURRENCY_COLUMN)}, {ident(EXPONENT_COLUMN)}{account} "
            f"FROM ({(batch or query).sql}) {limit} SETTINGS {CSV_FIELD_SETTINGS}")


def small_csv_rows_by_account(client: Client, query: ReportQuery, batch: ReportQuery, *,
                              max_rows: int, money_format: Literal["major", "minor"],
                              timestamp_style: str = DEFAULT_TIMESTAMP_STYLE
                              ) -> dict[str, list[tuple]]:
    """One query for the small CSV of every account of `batch` (`query`: one of them, for the
    columns): account -> the rows write_small_csv would have fetched for it, in its order. An
    account with no row is absent; one with more than `max_rows` has `max_rows` + 1 (its file
    takes the streamed path)."""
    names, types = query_columns(client, query)
    result = client.query(small_csv_sql(query, names, types, max_rows=max_rows,
                                        money_format=money_format, timestamp_style=timestamp_style,
                                        batch=batch),
                          parameters=batch.parameters)
    by_account: dict[str, list[tuple]] = {}
    for row in result.result_rows:
        by_account.setdefault(row[-1], []).append(tuple(row[:-1]))
    return by_account


def write_small_csv(client: Client, query: ReportQuery, out_path: Path, *, max_rows: int,
                    progress: Progress, gzip: bool, money_format: Literal["major", "minor"],
                    bom: bool = False, timestamp_style: str = DEFAULT_TIMESTAMP_STYLE,
                    rows: list[tuple] | None = None) -> Manifest | None:
    """A CSV of at most `max_rows` rows in ONE query (small_csv_sql), or None (nothing written)
    when the report has more rows, for the streamed path. On the embedded engine a query costs
    ~20 ms of planning whatever it reads: for the many small files of a batch or a month-end
    this halves the queries (no totals query first). `rows`: that query's rows, fetched already
    for many accounts at once (exports.reports.batches)."""
    names, types = query_columns(client, query)
    if rows is None:
        rows = client.query(small_csv_sql(query, names, types, max_rows=max_rows,
                                          money_format=money_format, timestamp_style=timestamp_style),
                            parameters=query.parameters).result_rows
    if len(rows) > max_rows:
        return None
    facts = facts_from_rows(query, names, types, [row[1:] for row in rows])
    names_out = column_headers(query.columns, money_format)
    with atomic_output(out_path) as tmp:
        lines = "".join(row[0] for row in rows).encode("utf-8")
        byte_size, sha256 = _write_body(tmp, _header(names_out, bom), lambda body: body.write_rows(lines),
                                        gzip=gzip, progress=progress, row_count=facts.row_count)
    progress.finish(facts.row_count)
    return _csv_manifest(query, out_path, facts, byte_size=byte_size, sha256=sha256, gzip=gzip,
                         columns=names_out, money_format=money_format,
                         timestamp_style=timestamp_style, bom=bom)


def _header(names: list[str], bom: bool) -> bytes:
    return (UTF8_BOM if bom else b"") + header_line(names)


def _write_body(tmp: Path, header: bytes, feed: Callable[[CsvBody], None], *, gzip: bool,
                progress: Progress, row_count: int) -> tuple[int, str]:
    """`header`, then what `feed` writes to the body, into `tmp` (through gzip if asked), hashed
    as written: (byte size, sha256 hex)."""
    with HashingFile(tmp) as sink:
        body = CsvBody(sink, gzip=gzip, progress=progress, row_count=row_count)
        body.write(header)
        feed(body)
        body.finish()
    return sink.byte_size, sink.sha256.hexdigest()


def _csv_manifest(query: ReportQuery, out_path: Path, facts: QueryFacts, *, byte_size: int,
                  sha256: str, gzip: bool, columns: list[str], money_format: str,
                  timestamp_style: str, bom: bool) -> Manifest:
    return build_manifest(query, "csv", out_path, facts, byte_size=byte_size, sha256=sha256,
                          compressed="gzip" if gzip else None, columns=columns,
                          extra={"money_format": money_format, "line_ending": "LF",
                                 "timestamp_format": timestamp_style, "bom": bom})


def copy_through_stream(client: Client, sql: str, parameters: dict[str, Any] | None,
                        body: CsvBody) -> None:
    stream = client.raw_stream(sql, parameters=parameters, fmt=CSV_OUTPUT_FORMAT)
    try:
        while chunk := stream.read(READ_CHUNK_BYTES):
            body.write_rows(chunk)
    finally:
        stream.close()


@contextmanager
def private_fifo() -> Iterator[str]:
    """A named pipe only we can open (0600, in a fresh 0700 temp dir); removed with its dir."""
    from exports.tempdirs import work_dir  # a killed worker's dir is swept later

    with work_dir("csv-fifo") as directory:
        path = os.path.join(directory, "rows.csv")
        os.mkfifo(path, 0o600)
        yield path


class RowsWorker:
    """Work on a thread beside ClickHouse's INTO OUTFILE query (see append_rows): feeds `body`.
    If writing or the progress callback raises (e.g. a cancellation), `failed` keeps the error
    for the main thread and calls `on_error`, which append_rows sets to kill the query."""

    def __init__(self, body: CsvBody):
        self._body = body
        self.error: BaseException | None = None
        self.on_error: Callable[[], None] = lambda: None

    def failed(self, error: BaseException) -> None:
        self.error = error
        self.on_error()


class PipeReader(RowsWorker):
    """Reads the pipe until EOF into `body`. After a failure the pipe is still drained to EOF:
    ClickHouse blocks on a full pipe until the kill lands, and the main thread is waiting for
    its query to return."""

    def __init__(self, fd: int, body: CsvBody):
        super().__init__(body)
        self._fd = fd

    def run(self) -> None:
        try:
            while chunk := os.read(self._fd, READ_CHUNK_BYTES):
                self._body.write_rows(chunk)
        except BaseException as error:  # noqa: BLE001 - re-raised by the main thread
            self.failed(error)
            with suppress(OSError):
                while os.read(self._fd, READ_CHUNK_BYTES):
                    pass


def copy_through_pipe(client: Client, sql: str, parameters: dict[str, Any] | None,
                      body: CsvBody, *, log_comment: str) -> None:
    with private_fifo() as fifo:
        # Hold both ends before the query starts. Our read end means ClickHouse's open() for
        # writing never blocks; our own write end means the reader cannot see EOF before
        # ClickHouse has opened the pipe, and always sees it once we close ours after the query
        # returned, however it ended (even if it failed before opening the pipe at all).
        read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            hold_fd = os.open(fifo, os.O_WRONLY)
        except BaseException:
            os.close(read_fd)
            raise
        os.set_blocking(read_fd, True)
        with suppress(OSError):  # only a speed-up; the default 64 KiB pipe works too
            fcntl.fcntl(read_fd, F_SETPIPE_SZ, PIPE_BUFFER_BYTES)
        try:
            append_rows(client, sql, parameters, fifo, PipeReader(read_fd, body), "csv-pipe-reader",
                        stop=lambda: os.close(hold_fd), log_comment=log_comment)
        finally:
            os.close(read_fd)


class FileFollower(RowsWorker):
    """Hashes a file while ClickHouse appends to it, feeding `body` until `finished` is set and
    the end of the file is reached. ClickHouse never waits for us.

    The new bytes are mapped (FOLLOW_WINDOW_BYTES at a time) rather than read: hashing straight
    from the page cache spares a copy of every byte into a buffer, which was measured at 0.45 of
    the 1.2 CPU-s the follower spent per 10M rows (1.2 GB) on cores the engine needs. Only bytes
    below the file's current size are mapped, and nothing truncates our private temp file, so a
    mapped page is always backed."""

    def __init__(self, path: Path, body: CsvBody):
        super().__init__(body)
        self._path = path
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            with open(self._path, "rb") as fh:
                fd, position = fh.fileno(), 0
                while True:
                    # Looked at before the size: if the query had returned by then, no new
                    # bytes means the file is complete.
                    done = self.finished.is_set()
                    size = os.fstat(fd).st_size
                    if size > position:
                        end = min(size, position + FOLLOW_WINDOW_BYTES)
                        self._feed(fd, position, end)
                        position = end
                    elif done:
                        return
                    else:
                        self.finished.wait(FOLLOW_POLL_SECONDS)
        except BaseException as error:  # noqa: BLE001 - re-raised by the main thread
            self.failed(error)

    def _feed(self, fd: int, start: int, end: int) -> None:
        offset = start - start % mmap.ALLOCATIONGRANULARITY  # mappings start on a page
        with mmap.mmap(fd, end - offset, offset=offset, access=mmap.ACCESS_READ) as mapped:
            # Views released before the unmap, as mmap requires.
            with memoryview(mapped) as view, view[start - offset:] as new_bytes:
                self._body.write_rows(new_bytes)


def write_through_file(client: Client, sql: str, parameters: dict[str, Any] | None, path: Path,
                       header: bytes, *, progress: Progress, row_count: int,
                       log_comment: str) -> tuple[int, str]:
    """ClickHouse appends the rows to `path` (after our header) itself, while a follower thread
    hashes and counts them as they land; returns (byte size, sha256 hex)."""
    path.write_bytes(header)
    digest = Digest()  # the bytes are already in the file: only hash and count them
    follower = FileFollower(path, CsvBody(digest, gzip=False, progress=progress, row_count=row_count))
    append_rows(client, sql, parameters, str(path), follower, "csv-file-follower",
                stop=follower.finished.set, log_comment=log_comment)
    return digest.byte_size, digest.sha256.hexdigest()


def append_rows(client: Client, sql: str, parameters: dict[str, Any] | None, path: str,
                worker: RowsWorker, thread_name: str, *,
                stop: Callable[[], None], log_comment: str) -> None:
    """Run `worker` on a thread while ClickHouse appends the query's CSV rows to `path` (APPEND:
    the path exists, a pipe or our file with its header; ClickHouse refuses to overwrite one).
    `stop()`, called once the query has returned or failed, lets the worker reach its end; an
    error the worker kept (e.g. a cancelling progress callback) is raised here, after the worker
    has had the query (labelled `log_comment` in its SETTINGS) killed rather than left to write
    every remaining row."""
    worker.on_error = lambda: kill_embedded_query(client, log_comment)
    thread = threading.Thread(target=worker.run, name=thread_name, daemon=True)
    thread.start()
    try:
        client.command(f"{sql} INTO OUTFILE {sql_string(path)} APPEND FORMAT {CSV_OUTPUT_FORMAT}",
                       parameters=parameters)
    except Exception:
        if worker.error is None:  # the query's own failure; else it failed because we killed it
            raise
    finally:
        stop()
        thread.join()
    if worker.error is not None:
        raise worker.error


def kill_embedded_query(client: Client, log_comment: str) -> None:
    """KILL the running query labelled `log_comment`, from a second connection to the same
    embedded engine (chdb runs queries concurrently). Not matched on the query's text: bound
    parameters make ClickHouse re-format it, comments dropped. Best effort: if it fails, the
    query just runs to its end."""
    import clickhouse_connect

    try:
        killer = clickhouse_connect.get_client(dsn=f"chdb://{client.path}")
        try:
            killer.command(f"KILL QUERY WHERE Settings['log_comment'] = {sql_string(log_comment)} ASYNC")
        finally:
            killer.close()
    except Exception:  # noqa: BLE001 - the caller is already failing with the real error
        log.warning("could not stop the export query; it will run to its end", exc_info=True)
