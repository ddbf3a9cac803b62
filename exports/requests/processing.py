"""Turn report requests into stored files: claim, render, store, record, hand to delivery.

`run_batch` is what a Dagster report run executes: in one process, with one warehouse client and
one pool of app-database connections, it claims the most urgent claimable request of its lane,
processes it, and claims the next, until the lane is empty or its budget (requests, seconds) is
spent. Each request is claimed, progressed, completed or failed on its own, by the rules of
exports/requests/lifecycle.py. A batch hands finished requests to delivery threads of its own
(lifecycle.deliveries_in_background), so a slow webhook endpoint or SMTP server never delays the
next claim. `process_request` processes one given request the same way, delivering inline.

Safe to run twice for the same request: a finished or canceled request is left alone, only the
run that claimed a request may finish it, and the storage key is deterministic, so a retry
overwrites the same object instead of adding one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from exports import db
from exports.logging import log_context
from exports.replication import data_available_end
from exports.requests import lifecycle, store
from exports.requests.lifecycle import HEARTBEAT_SECONDS, ReportCanceled, notify_finished
from exports.settings import Settings, get_settings
from exports.storage import CONTENT_TYPES, extension_for, get_storage, report_key
from exports.tempdirs import work_dir
from exports.reports.engine import run_cache

log = logging.getLogger(__name__)

__all__ = ["Lane", "LANES", "BatchSummary", "run_batch", "process_request", "process_claimed"]

PROGRESS_INTERVAL_SECONDS = 1.0
# "Data available up to" is re-read at most this often while a batch claims requests.
AVAILABILITY_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class Lane:
    """A kind of batch run. `min_priority` bounds what it claims (it always claims the most urgent
    first); `max_requests` / `max_seconds` bound a run, so the embedded warehouse it holds is
    released regularly (platform refreshes wait their turn) and the sensor starts the next."""
    name: str
    min_priority: int | None
    max_requests: int
    max_seconds: float
    run_priority: int  # the Dagster run queue's dagster/priority: on-demand runs dequeue first


ON_DEMAND_PRIORITY = store.PRIORITY_BY_SOURCE["api"]
LANES = {
    # Small, immediate batches of API requests: never behind scheduled or backfill work.
    "on_demand": Lane("on_demand", ON_DEMAND_PRIORITY, max_requests=100, max_seconds=30,
                      run_priority=ON_DEMAND_PRIORITY),
    # Everything else, most urgent first; a bulk run also takes any on-demand request that arrives
    # while it runs (it claims by priority), which in embedded mode is what serves them fastest.
    "bulk": Lane("bulk", None, max_requests=5000, max_seconds=300, run_priority=0),
}


class _ProgressReporter:
    """Throttled progress writer that also notices cancellation, plus a heartbeat thread."""

    def __init__(self, request_id: str, settings: Settings):
        self.request_id = request_id
        self.settings = settings
        self.last_write = time.monotonic()
        self.canceled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{request_id}")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if store.heartbeat(self.request_id, self.settings) == "canceled":
                    self.canceled.set()
            except Exception:  # noqa: BLE001 — a missed beat is harmless; the next one retries
                log.warning("heartbeat for %s failed", self.request_id, exc_info=True)

    def __enter__(self) -> "_ProgressReporter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __call__(self, rows_written: int) -> None:
        if self.canceled.is_set():
            raise ReportCanceled(self.request_id)
        now = time.monotonic()
        if now - self.last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_write = now
        # The total is unknown: creep towards 90 so the bar moves but never claims to be done.
        percent = min(90, 10 + int(rows_written ** 0.5) // 10)
        if store.update_progress(self.request_id, percent, self.settings) == "canceled":
            raise ReportCanceled(self.request_id)


# process_request's `available` when the caller has not read it: read it now.
READ_NOW = object()


def process_request(request_id: str, settings: Settings | None = None, *,
                    run_id: str | None = None, client=None, max_attempts: int | None = None,
                    available: datetime | None | object = READ_NOW) -> str:
    """Claim one given request and process it; return its status afterwards ('pending' when it
    went back to the queue: a retryable failure or a scheduled request waiting for data).
    `max_attempts` may lower the lifecycle's retry policy for this request (1: fail, not retry).
    `available`: the data available end the caller read (a statements run checked it for the
    whole period); read now when not given."""
    settings = settings or get_settings()
    with log_context(report_id=request_id, run_id=run_id):
        log.debug("processing report request")
        row = store.claim_for_processing(request_id, run_id, settings)
        if row is None:  # finished, canceled or expired: a duplicate or late retry is harmless
            status = store.status_of(request_id, settings) or "missing"
            log.info("nothing to do: the report request is %s", status)
            return status
        if available is READ_NOW:
            available = data_available_end(settings)
        return process_claimed(row, settings, run_id=run_id, client=client,
                               available=available, max_attempts=max_attempts)


def process_claimed(row: dict, settings: Settings, *, run_id: str | None, client,
                    available: datetime | None, max_attempts: int | None = None) -> str:
    """Render, store and record one claimed request; every outcome goes through the lifecycle."""
    request_id = row["id"]
    with log_context(report_id=request_id, run_id=run_id, account_id=row["account_id"]):
        # DEBUG: in a batch of thousands, one INFO line per request is enough (the outcome).
        log.debug("rendering report request (attempt %s)", row["attempt_count"])
        try:
            status = _render_and_store(row, settings, run_id=run_id, client=client,
                                       available=available)
        except ReportCanceled:
            status = "canceled"
        except Exception as exc:  # noqa: BLE001 — the lifecycle decides: retry later or fail
            status = lifecycle.attempt_failed(row, exc, settings, run_id=run_id,
                                              max_attempts=max_attempts)
        # A completed file at DEBUG: each INFO line of a Dagster run is a row of its event log
        # (dagster.yaml python_logs) written over a new database connection, and a month-end
        # would write 30,000 of them that nobody reads. Every outcome is in report_requests and
        # runs log their totals; anything else (retry, wait, failure) stays at INFO.
        log.log(logging.DEBUG if status == "completed" else logging.INFO,
                "report request finished with status %s", status)
        return status


def _interval_end(row: dict, settings: Settings) -> datetime | None:
    from exports.reports.engine import validate_report_request

    return validate_report_request(row["account_id"], row["report_type"], row["parameters"],
                                   row["format"], settings=settings,
                                   data_available_end=None).interval_end


def _render_and_store(row: dict, settings: Settings, *, run_id: str | None, client,
                      available: datetime | None) -> str:
    from exports.reports.engine import generate_report  # imports the writers: keep API light

    request_id = row["id"]
    if row["source"] in lifecycle.WAITS_FOR_DATA_SOURCES:
        until = _interval_end(row, settings)
        if lifecycle.needs_to_wait(row, until, available):
            status = lifecycle.wait_for_data(row, until, available, settings, run_id=run_id)
            log.info("report request %s: %s", request_id, lifecycle.waiting_reason(until, available))
            return status
    # Under the project's scratch root: a killed worker's dir is swept later (exports/tempdirs.py).
    with _ProgressReporter(request_id, settings) as progress, work_dir(request_id, settings) as tmp:
        out_path = Path(tmp) / f"{request_id}.{extension_for(row['format'])}"
        manifest = generate_report(row["account_id"], row["report_type"], row["parameters"],
                                   row["format"], out_path, settings=settings, progress=progress,
                                   client=client)
        version = manifest.extra.get("data_version")  # one definition: see generate_report
        data_version = datetime.fromisoformat(version) if version else None
        if store.status_of(request_id, settings) == "canceled":
            raise ReportCanceled(request_id)
        extension = extension_for(manifest.format, manifest.compressed)
        key = report_key(row["account_id"], row["created_at"], request_id, extension, settings)
        produced = Path(out_path)
        if not produced.exists():  # the writer may have added a suffix (e.g. .gz)
            produced = next(Path(tmp).iterdir())
        try:
            get_storage(settings).put(produced, key, CONTENT_TYPES.get(extension))
        except Exception as exc:
            log.exception("storing %s as %s failed", request_id, key)
            raise lifecycle.storage_error(exc) from exc
    expires_at = datetime.now(timezone.utc) + timedelta(days=settings.report_retention_days)
    done = store.complete(request_id, file_key=key, file_size_bytes=manifest.byte_size,
                          row_count=manifest.row_count, sha256=manifest.sha256,
                          manifest=manifest.to_dict(), data_version=data_version,
                          expires_at=expires_at, settings=settings, claimed_by=run_id)
    if done is None:
        status = store.status_of(request_id, settings) or "missing"
        if status == "canceled":  # canceled while uploading: drop the file
            get_storage(settings).delete(key)
        # else the request was rescued and another run owns it (and the same-keyed file): keep it
        return status
    notify_finished(request_id, settings)
    return "completed"


@dataclass
class BatchSummary:
    """What one batch run did, for its Dagster tags and metadata."""
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)  # "report_type:format" -> requests
    processed: list[tuple[str, str]] = field(default_factory=list)  # (request id, status)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (request id, error message)
    seconds: float = 0.0

    def add(self, row: dict, status: str, settings: Settings) -> None:
        self.statuses[status] += 1
        self.kinds[f"{row['report_type']}:{row['format']}"] += 1
        self.processed.append((row["id"], status))
        if status == "failed":
            self.failed.append((row["id"], store.get(row["id"], settings=settings)["error_message"]))


class DataAvailability:
    """replication's "data available up to", re-read at most every AVAILABILITY_TTL_SECONDS."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.read_at = -AVAILABILITY_TTL_SECONDS
        self.value: datetime | None = None

    def get(self) -> datetime | None:
        if time.monotonic() - self.read_at >= AVAILABILITY_TTL_SECONDS:
            self.value = data_available_end(self.settings)
            self.read_at = time.monotonic()
        return self.value


@contextmanager
def _lazy_warehouse(settings: Settings, purpose: str):
    """Hold the embedded warehouse's lock for the block (so claims made inside it can be served
    at once) but open the client only when a request needs it: a run that finds nothing to do
    costs no engine start."""
    from exports.warehouse import get_client, warehouse_lock

    opened: list = []

    def client():
        if not opened:
            opened.append(get_client(settings))
        return opened[0]

    with warehouse_lock(settings, purpose=purpose):
        try:
            yield client
        finally:
            for c in opened:
                c.close()


def run_batch(run_id: str, lane: Lane, settings: Settings | None = None, *,
              max_requests: int | None = None, max_seconds: float | None = None) -> BatchSummary:
    """Process claimable requests of `lane` until none is left or the budget is spent."""
    settings = settings or get_settings()
    max_requests = max_requests or lane.max_requests
    deadline = time.monotonic() + (max_seconds or lane.max_seconds)
    summary = BatchSummary()
    started = time.monotonic()
    availability = DataAvailability(settings)
    with log_context(run_id=run_id), ExitStack() as stack:
        # Room for the heartbeat and the delivery threads besides this one.
        stack.enter_context(db.pooled(settings, max_size=6))
        # Entered before the warehouse, so it is left after it: the warehouse is released before
        # the last deliveries are waited for.
        stack.enter_context(lifecycle.deliveries_in_background(settings))
        # Take the warehouse first, then claim: a claim is served at once, never parked behind
        # another batch holding the embedded warehouse (which claims urgent requests itself).
        client = stack.enter_context(_lazy_warehouse(settings, f"report batch {run_id}"))
        # Small reports are mostly query planning: a batch reads each report's shape (LIMIT 0)
        # and each account's warehouse facts once, as a statement run does, not per request.
        stack.enter_context(run_cache())
        while len(summary.processed) < max_requests and time.monotonic() < deadline:
            row = store.claim_next(run_id, data_available_end=availability.get(),
                                   min_priority=lane.min_priority, settings=settings)
            if row is None:
                break
            status = process_claimed(row, settings, run_id=run_id, client=client(),
                                     available=availability.get())
            summary.add(row, status, settings)
    summary.seconds = time.monotonic() - started
    log.info("batch %s (%s): %s in %.1f s", run_id, lane.name, dict(summary.statuses), summary.seconds)
    return summary
