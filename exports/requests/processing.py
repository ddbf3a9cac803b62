"""Turn one report request into a stored file: claim, render, store, record, notify.

Pure Python (the Dagster job is a thin wrapper), safe to run twice for the same request: a
finished or canceled request is left alone, and the storage key is deterministic, so a retry
overwrites the same object instead of adding one.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from exports.delivery import notify_report_finished
from exports.errors import ReportingError
from exports.logging import log_context
from exports.requests import store
from exports.settings import Settings, get_settings
from exports.storage import CONTENT_TYPES, extension_for, get_storage, report_key
from exports.tempdirs import work_dir


log = logging.getLogger(__name__)

# Attempts before a request is failed for good (the first run + Dagster's run retries).
MAX_ATTEMPTS = 3
PROGRESS_INTERVAL_SECONDS = 1.0
# A live worker touches its row this often, even while a long query produces no rows yet; the
# watchdog treats a processing row silent for much longer (STALE_AFTER_SECONDS) as orphaned.
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 30.0


class ReportCanceled(Exception):
    """Raised from the progress callback to stop rendering a canceled request."""


def internal_error_message(run_id: str | None) -> str:
    return ("internal error while generating the report; it will not be retried automatically "
            f"(ref {run_id or 'no-run'})")


def notify_finished(request_id: str, settings: Settings) -> None:
    """Deliveries must never make a request fail: log and carry on."""
    try:
        notify_report_finished(request_id, settings=settings)
    except Exception:  # noqa: BLE001 — delivery has its own retries; the report is done
        log.exception("notifying about %s failed; deliveries will retry", request_id)


class _ProgressReporter:
    """Throttled progress writer that also notices cancellation."""

    def __init__(self, request_id: str, settings: Settings, expected_rows: int | None):
        self.request_id = request_id
        self.settings = settings
        self.expected_rows = expected_rows
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
        if self.expected_rows:
            percent = min(95, int(rows_written * 100 / self.expected_rows))
        else:  # unknown total: creep towards 90 so the bar moves but never claims to be done
            percent = min(90, 10 + int(rows_written ** 0.5) // 10)
        if store.update_progress(self.request_id, percent, self.settings) == "canceled":
            raise ReportCanceled(self.request_id)


def process_request(request_id: str, settings: Settings | None = None, *, run_id: str | None = None,
                    max_attempts: int = MAX_ATTEMPTS) -> str:
    """Generate, store and record one request; return its final status.

    Re-raises unexpected errors while attempts remain (so the orchestrator retries the run);
    on the last attempt the row is failed with a message and the status is returned.
    Every log line of the report's life carries its report_id and run_id."""
    with log_context(report_id=request_id, run_id=run_id):
        log.info("processing report request")
        status = _process_request(request_id, settings, run_id=run_id, max_attempts=max_attempts)
        log.info("report request finished with status %s", status)
        return status


def _process_request(request_id: str, settings: Settings | None, *, run_id: str | None,
                     max_attempts: int) -> str:
    settings = settings or get_settings()
    row = store.claim_for_processing(request_id, run_id, settings)
    if row is None:  # finished, canceled or expired: a duplicate or late retry is harmless
        return store.status_of(request_id, settings) or "missing"

    from exports.reports.engine import generate_report  # imports the writers: keep API light

    progress = _ProgressReporter(request_id, settings, None)
    try:
        # Under the project's scratch root: a killed worker's dir is swept later (exports/tempdirs.py).
        with progress, work_dir(request_id, settings) as tmp:
            out_path = Path(tmp) / f"{request_id}.{extension_for(row['format'])}"
            manifest = generate_report(row["account_id"], row["report_type"], row["parameters"],
                                       row["format"], out_path, settings=settings, progress=progress)
            version = manifest.extra.get("data_version")  # one definition: see generate_report
            data_version = datetime.fromisoformat(version) if version else None
            if store.status_of(request_id, settings) == "canceled":
                raise ReportCanceled(request_id)
            extension = extension_for(manifest.format, manifest.compressed)
            key = report_key(row["account_id"], row["created_at"], request_id, extension, settings)
            produced = Path(out_path)
            if not produced.exists():  # the writer may have added a suffix (e.g. .gz)
                produced = next(Path(tmp).iterdir())
            get_storage(settings).put(produced, key, CONTENT_TYPES.get(extension))
        expires_at = datetime.now(timezone.utc) + timedelta(days=settings.report_retention_days)
        done = store.complete(request_id, file_key=key, file_size_bytes=manifest.byte_size,
                              row_count=manifest.row_count, sha256=manifest.sha256,
                              manifest=manifest.to_dict(), data_version=data_version,
                              expires_at=expires_at, settings=settings)
        if done is None:
            status = store.status_of(request_id, settings) or "missing"
            if status == "canceled":  # canceled while uploading: drop the file
                get_storage(settings).delete(key)
            # else a duplicate run completed first and owns the (same-keyed) file: keep it
            return status
    except ReportCanceled:
        return "canceled"
    except ReportingError as exc:  # the user's request cannot be served: retrying won't help
        store.fail(request_id, exc.message, settings)
        notify_finished(request_id, settings)
        return "failed"
    except Exception:
        if row["attempt_count"] < max_attempts:
            log.exception("report %s failed on attempt %s; the run will be retried",
                          request_id, row["attempt_count"])
            raise
        log.exception("report %s failed on its last attempt", request_id)
        store.fail(request_id, internal_error_message(run_id), settings)
        notify_finished(request_id, settings)
        return "failed"
    notify_finished(request_id, settings)
    return "completed"
