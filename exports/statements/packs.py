"""Render statement packs: one account's statement set for one period, and a shard's packs.

Each file is an ordinary report request (source 'statement') whose id is a pure function of
(cadence, period, account, report type, format). Rendering a pack opens each row through
`store.open_statement` — inserted on the first run, found on every later one (a failed one is
reset to pending to be retried) — and hands the rows it owns to
`exports.requests.processing.process_request`, the code every report goes
through (claim, render, store under the row's deterministic key, record, deliver). So a re-run
of a period adds no row, writes no second file and sends no second email (deliveries are unique
per request, channel, target and event); a failed file is retried by re-running its partition.

Nothing is rendered before the warehouse's data covers the period's end in every timezone
involved (availability.DataNotAvailable, which is not a report failure: no row is touched).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from exports import db
from exports.delivery.email import smtp_sessions
from exports.errors import InvalidParameter
from exports.requests import store
from exports.requests.processing import (ON_DEMAND_PRIORITY, DataAvailability,
                                         process_claimed, process_request)
from exports.settings import Settings, get_settings
from exports.statements.accounts import StatementAccount, accounts_owed, list_accounts
from exports.statements.availability import require_data
from exports.statements.items import StatementItem, statement_set
from exports.statements.periods import StatementPeriod
from exports.statements.shards import SHARD_KEYS, shard_of
from exports.reports import batches
from exports.reports.engine import prefetch_accounts, run_cache

log = logging.getLogger(__name__)

REQUESTED_BY = "statements"
# A run's packs share one warehouse client (opening the embedded chdb costs ~0.2-0.6 s, more
# than a small report takes). In embedded mode one process at a time may open the warehouse, and
# an on-demand report must not wait behind a month-end: once the client has been held this long,
# it is handed over whenever another process is waiting for it (exports.warehouse.others_waiting)
# — closed, a pause long enough for the waiter (which polls the lock every 0.2 s) to take it,
# then reopened. Nobody waiting: no pause (each one cost ~0.5-0.9 s every 5 s).
WAREHOUSE_TURN_SECONDS = 5.0
WAREHOUSE_YIELD_SECONDS = 0.3
# Partition metadata lists at most this many failures (every one is in report_requests).
LISTED_FAILURES = 20
# In embedded mode a statements run serves on-demand requests itself, between packs, looking at
# most this often (one indexed claim query) and taking at most ON_DEMAND_PER_LOOK at a time, so
# a burst cannot stall the month-end. The report sensor starts no on-demand run while the run
# keeps looking (exports.warehouse.on_demand_served_by_holder), and starts them as before once
# it stops (done, dead, or every thread busy).
ON_DEMAND_LOOK_SECONDS = 0.5
ON_DEMAND_PER_LOOK = 10


def statement_request_id(account_id: str, period: StatementPeriod, item: StatementItem) -> str:
    identity = f"statement|{period.cadence}|{period.key}|{account_id}|{item.report_type}|{item.format}"
    return "rpt_stmt" + hashlib.sha256(identity.encode()).hexdigest()[:24]


def statement_request(account: StatementAccount, period: StatementPeriod, item: StatementItem,
                      settings: Settings) -> store.NewRequest:
    return store.NewRequest(
        account_id=account.id, report_type=item.report_type, format=item.format,
        # Local dates in the account's timezone: the report covers its calendar period.
        parameters={"interval_start": period.start.isoformat(),
                    "interval_end": period.end.isoformat(), "timezone": account.timezone},
        email_recipients=[account.email] if settings.statement_email_account and account.email else None,
        requested_by=REQUESTED_BY, source="statement")


@dataclass(frozen=True)
class StatementOutcome:
    """One statement file after a run: its row as the store has it."""

    account_id: str
    item: StatementItem
    request_id: str
    status: str  # completed, failed, processing (handled elsewhere), canceled, expired, ...
    rendered: bool  # this run processed it (False: found finished, or in another worker's hands)
    error_message: str | None = None
    file_key: str | None = None
    sha256: str | None = None
    row_count: int | None = None
    file_size_bytes: int | None = None


@dataclass
class ShardResult:
    period: StatementPeriod
    shard: int
    outcomes: list[StatementOutcome] = field(default_factory=list)
    data_available_end: datetime | None = None

    @property
    def accounts(self) -> int:
        return len({o.account_id for o in self.outcomes})

    @property
    def failed(self) -> list[StatementOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.status for o in self.outcomes).items()))

    def manifest(self) -> dict[str, dict[str, int]]:
        """Per statement item: completed files, their rows and bytes (each file's own manifest,
        sha256 included, is on its report)."""
        totals: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            if o.status != "completed":
                continue
            entry = totals.setdefault(o.item.name, {"files": 0, "rows": 0, "bytes": 0})
            entry["files"] += 1
            entry["rows"] += o.row_count or 0
            entry["bytes"] += o.file_size_bytes or 0
        return totals

    def summary(self) -> dict:
        """Plain data for the partition's materialization metadata."""
        return {
            "period": self.period.label, "shard": SHARD_KEYS[self.shard],
            "accounts": self.accounts, "statements": len(self.outcomes),
            "rendered": sum(o.rendered for o in self.outcomes), "statuses": self.counts(),
            "manifest": self.manifest(),
            "data_available_end": self.data_available_end.isoformat() if self.data_available_end else None,
            "failed": [{"account_id": o.account_id, "statement": o.item.name, "report_id": o.request_id,
                        "error": o.error_message} for o in self.failed[:LISTED_FAILURES]],
        }


class WarehouseTurns:
    """Lends an open warehouse client to the threads rendering files, handing it over to another
    process when one waits (see WAREHOUSE_TURN_SECONDS). A lease lasts one file; a handover
    waits until no file holds the client."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stack: ExitStack | None = None
        self._client = None
        self._since = 0.0
        self._leases = 0
        self._handing_over = False  # a thread waits for the files rendering now to hand it over
        self._changed = threading.Condition()
        self.handed_over = 0  # times the client was closed for another process

    def _handover_due(self) -> bool:
        from exports.warehouse import others_waiting

        return (self._client is not None and self.settings.warehouse_is_embedded
                and time.monotonic() - self._since > WAREHOUSE_TURN_SECONDS
                and others_waiting(self.settings))

    @contextmanager
    def lease(self) -> Iterator:
        from exports.warehouse import open_warehouse

        with self._changed:
            # No file starts while a handover waits for the files rendering now: with several
            # threads, one or another always held a lease, and the handover (with the file of
            # the thread making it) waited until the shard ran out of packs.
            while self._handing_over:
                self._changed.wait()
            if self._handover_due():
                self._handing_over = True
                try:
                    while self._leases and self._handover_due():
                        self._changed.wait()
                    if self._handover_due():  # the waiter may have given up meanwhile
                        self.close()
                        self.handed_over += 1
                        time.sleep(WAREHOUSE_YIELD_SECONDS)
                finally:
                    self._handing_over = False
                    self._changed.notify_all()
            if self._client is None:
                self._stack = ExitStack()
                self._client = self._stack.enter_context(
                    open_warehouse(self.settings, purpose="statements"))
                self._since = time.monotonic()
            self._leases += 1
            client = self._client
        try:
            yield client
        finally:
            with self._changed:
                self._leases -= 1
                self._changed.notify_all()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._client = None

    def __enter__(self) -> "WarehouseTurns":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class OnDemandRequests:
    """On-demand requests served from inside a statements run that holds the embedded warehouse.

    Otherwise each would get a report run of its own, which waits for the statements run to
    hand the warehouse over (up to WAREHOUSE_TURN_SECONDS) and costs it a close, a pause and a
    reopen: with one request a second during a month-end, both got slower (on-demand p50 ~3 s,
    the statements ~2x). Here a request waits for at most one pack, and goes through the same
    claim and lifecycle as in a report run (claimed by this run: if the run dies, the watchdog
    rescues it like any other)."""

    def __init__(self, settings: Settings, run_id: str):
        self.settings = settings
        self.run_id = run_id
        self._lock = threading.Lock()
        self._next_look = 0.0
        self.served = 0
        self._availability = DataAvailability(settings)

    def serve(self, warehouse: WarehouseTurns) -> int:
        """Process the on-demand requests waiting now (one thread at a time; another thread
        that finds it busy just goes on with its pack). It claims only while holding the
        warehouse, so a claimed request is never parked behind another process's turn, and it
        says so (mark_serving_on_demand) for the report sensor."""
        if time.monotonic() < self._next_look or not self._lock.acquire(blocking=False):
            return 0
        try:
            from exports.warehouse import mark_serving_on_demand

            served = 0
            with warehouse.lease() as client:
                self._next_look = time.monotonic() + ON_DEMAND_LOOK_SECONDS
                mark_serving_on_demand(self.settings)
                available = self._availability.get()
                while served < ON_DEMAND_PER_LOOK:
                    row = store.claim_next(self.run_id, data_available_end=available,
                                           min_priority=ON_DEMAND_PRIORITY, settings=self.settings)
                    if row is None:
                        break
                    process_claimed(row, self.settings, run_id=self.run_id, client=client,
                                    available=available)
                    served += 1
            self.served += served
            return served
        finally:
            self._lock.release()


@dataclass
class StatementRun:
    """What the shards of one run share (statement_run)."""
    warehouse: WarehouseTurns
    # Threads rendering packs (None: the caller's thread), kept for the run so that what a
    # thread holds (its SMTP connection) serves every shard.
    threads: ThreadPoolExecutor | None = None
    on_demand: OnDemandRequests | None = None


@contextmanager
def statement_run(settings: Settings | None = None, *, pdf_workers: int | None = None,
                  run_id: str | None = None) -> Iterator[StatementRun]:
    """What the shards of one run share: a pool of database connections (a file makes ~10 store
    and delivery statements; a new connection costs ~10 ms), one warehouse client taken in turns,
    the report shapes and accounts read once (engine.run_cache), and (pdf_workers != 0) summary PDFs laid out in worker processes
    while PACK_THREADS threads render packs (exports/statements/render_pool.py). Pass the yielded
    StatementRun to render_shard. With the embedded warehouse and the run's `run_id` (its
    Dagster run), the run also serves on-demand requests between packs (OnDemandRequests)."""
    from exports.statements import render_pool
    from exports.writers.pdf_writer import html_to_pdf

    settings = settings or get_settings()
    with ExitStack() as stack:
        stack.enter_context(db.pooled(settings, max_size=render_pool.PACK_THREADS + 2))
        # Three emails a pack: each pack thread keeps its SMTP connection for the run.
        stack.enter_context(smtp_sessions(settings))
        stack.enter_context(run_cache())
        warehouse = stack.enter_context(WarehouseTurns(settings))
        run = StatementRun(warehouse)
        if run_id is not None and settings.warehouse_is_embedded:
            run.on_demand = OnDemandRequests(settings, run_id)
        if pdf_workers != 0:
            pool = stack.enter_context(render_pool.pdf_workers(pdf_workers))
            token = html_to_pdf.set(render_pool.html_to_pdf_in(pool))
            stack.callback(html_to_pdf.reset, token)
            run.threads = stack.enter_context(ThreadPoolExecutor(
                render_pool.PACK_THREADS, thread_name_prefix="statement-pack"))
        yield run


def render_pack(account: StatementAccount, period: StatementPeriod, items: Iterable[StatementItem],
                *, available: datetime | None, run_id: str | None = None,
                settings: Settings | None = None,
                warehouse: WarehouseTurns | None = None,
                known_statuses: Mapping[str, str] | None = None) -> list[tuple[StatementItem, str, bool]]:
    """One account's statements for `period`: (item, report id, rendered by this call) each.
    `available`: the data available end checked for the period (require_data).
    `known_statuses`: report id -> status, read for many packs at once (a file not in it has no
    row yet); without it each file's status is read here.

    Each row is opened idempotently and the ones this call owns go through process_request. An
    error in one file fails that file's report, with its reason, and the pack goes on; the file
    is retried by re-running the period."""
    settings = settings or get_settings()
    done = []
    for item in items:
        request_id = statement_request_id(account.id, period, item)
        status = (known_statuses.get(request_id) if known_statuses is not None
                  else store.status_of(request_id, settings))
        # A row created or finished elsewhere since that read is settled by open_statement.
        if status not in (None, "failed"):
            done.append((item, request_id, False))  # rendered (or being rendered) already
            continue
        # The row is opened 'processing' only once this thread holds the warehouse, and is
        # processed at once: a row left waiting for the warehouse's turn has no heartbeat, and
        # the watchdog takes its run for dead.
        with warehouse.lease() if warehouse is not None else nullcontext() as client:
            row, mine = store.open_statement(request_id, statement_request(account, period, item, settings),
                                             run_id, settings)
            if not mine and row["status"] == "failed":
                # Re-running the period retries its failed files (the lifecycle's failed ->
                # pending, fresh attempts); the claim below takes it unless a batch run got
                # there first.
                mine = store.reset_failed(request_id, settings) is not None
            if mine:
                # max_attempts=1: an error fails this file instead of queueing retries, so one
                # account's trouble never holds up the other accounts' statements.
                process_request(request_id, settings, run_id=run_id, max_attempts=1, client=client,
                                available=available)
        done.append((item, request_id, mine))
    return done


def render_shard(period: StatementPeriod, shard: int, *, account_ids: Iterable[str] | None = None,
                 run_id: str | None = None, settings: Settings | None = None,
                 accounts: list[StatementAccount] | None = None,
                 run: StatementRun | None = None) -> ShardResult:
    """Every pack owed for `period` in `shard` (or only those of `account_ids` in it).

    Raises DataNotAvailable before touching any row when the data stops short of the period's
    end in one of these accounts' timezones. `accounts` (all accounts) and `run` (see
    statement_run) may be passed by a caller rendering several shards, to read and open them
    once."""
    settings = settings or get_settings()
    items = statement_set(settings)
    wanted = set(account_ids) if account_ids is not None else None
    if accounts is None:
        accounts = list_accounts(settings, ids=wanted)
    owed = [a for a in accounts_owed(accounts, period, shard) if wanted is None or a.id in wanted]
    result = ShardResult(period, shard)
    result.data_available_end = require_data(period, {a.timezone for a in owed}, settings)
    with ExitStack() as stack:
        if run is None:
            run = StatementRun(stack.enter_context(WarehouseTurns(settings)))
            # Every account's file of one type has the same shape (per timezone): read it once.
            stack.enter_context(run_cache())

        # What the shard's files are now, in one read: files rendered (or being rendered)
        # already are skipped without a query each, and open no warehouse.
        file_ids = {a.id: [statement_request_id(a.id, period, item) for item in items] for a in owed}
        known = {request_id: row["status"] for request_id, row in store.statuses(
            [i for ids in file_ids.values() for i in ids], settings).items()}
        to_render = [(a, item) for a in owed for item, request_id in zip(items, file_ids[a.id])
                     if known.get(request_id) in (None, "failed")]
        if to_render:
            with run.warehouse.lease() as client:
                # One lookup for the shard's accounts (each file needs its account's name,
                # timezone and size): a query each cost ~20 ms of planning a pack. Then the
                # rows of each small CSV of the set for all of them, one query per type and
                # timezone (exports.reports.batches), not one a file.
                prefetch_accounts(client, settings, sorted({a.id for a, _ in to_render}))
                batches.prefetch(client, settings, [
                    batches.File(a.id, item.report_type,
                                statement_request(a, period, item, settings).parameters, item.format)
                    for a, item in to_render])

        def pack(account: StatementAccount):
            if run.on_demand is not None:
                run.on_demand.serve(run.warehouse)
            return [(account.id, *entry) for entry in render_pack(
                account, period, items, run_id=run_id, settings=settings, warehouse=run.warehouse,
                available=result.data_available_end, known_statuses=known)]

        if run.threads is not None and len(owed) > 1:
            # Pool threads run in their own context: each pack runs in a copy of this one (the
            # run's caches, PDF workers and SMTP sessions, the log context).
            context = contextvars.copy_context()
            packs = list(run.threads.map(lambda a: context.copy().run(pack, a), owed))
        else:
            packs = [pack(account) for account in owed]
        done = [entry for entries in packs for entry in entries]
    rows = store.statuses([request_id for _, _, request_id, _ in done], settings)
    for account_id, item, request_id, rendered in done:
        row = rows.get(request_id, {})
        result.outcomes.append(StatementOutcome(
            account_id, item, request_id, row.get("status", "missing"), rendered,
            row.get("error_message"), row.get("file_key"), row.get("sha256"), row.get("row_count"),
            row.get("file_size_bytes")))
    log.info("statements %s shard %s: %s", period.label, SHARD_KEYS[shard], result.counts())
    return result


def check_accounts_exist(account_ids: Iterable[str], settings: Settings | None = None
                         ) -> list[StatementAccount]:
    """The accounts named by a re-run or backfill; InvalidParameter naming any unknown one."""
    ids = sorted(set(account_ids))
    found = list_accounts(settings, ids=ids)
    missing = sorted(set(ids) - {a.id for a in found})
    if missing:
        raise InvalidParameter(f"no such account: {', '.join(missing)}", param="account_ids")
    return found


def shards_of(account_ids: Iterable[str]) -> list[int]:
    return sorted({shard_of(a) for a in account_ids})
