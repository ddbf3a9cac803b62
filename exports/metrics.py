"""Prometheus metrics for the reporting system, read from the app database at scrape time.

Why at scrape time rather than counters bumped in code: reports are generated in Dagster run
processes that come and go (and, in production, on other machines), while the API process is
what Prometheus scrapes. The app database already records everything (report_requests,
deliveries, delivery_attempts, replication_watermarks), so each scrape derives the series from
it: every API replica reports the same values, and a restart loses nothing. Counters are
counts of rows in terminal states, which only grow (completed rows later become `expired`, so
both count as completed).

Report duration is `completed_at - started_at` of completed (and later expired) rows — the
last attempt's generation time, since a retry re-stamps `started_at`; queueing time is not in
it (that is `payreports_reports_oldest_pending_age_seconds`).

Failure reason: report_requests has no error-code column; messages written by
`exports.requests.lifecycle` for our own failures start with "internal error", every other
failure is a request the user must change (a `ReportingError`). So the `reason` label is
`internal` or `request`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exports import db
from exports.requests import store
from exports.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Seconds. The design's alert is P95 > 10 minutes, so buckets are dense around 600.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _table_exists(conn, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (name,)).fetchone()["ok"]


class AppDatabaseCollector(Collector):
    """Every series below comes from one short read-only transaction on the app database."""

    def __init__(self, settings: Settings | None = None):
        self._settings = settings

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("payreports_app_db_up",
                               "1 when the app database answered this scrape, else 0")
        try:
            families = self._read(self._settings or get_settings())
        except Exception:  # noqa: BLE001 — a scrape must answer even when the DB is down
            log.exception("reading metrics from the app database failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        took = GaugeMetricFamily("payreports_metrics_scrape_duration_seconds",
                                 "Time spent reading this scrape's values from the app database")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _read(self, settings: Settings) -> list[Metric]:
        with db.connect("app", settings, dict_rows=True) as conn:
            conn.read_only = True
            families = self._reports(conn)
            if _table_exists(conn, "deliveries") and _table_exists(conn, "delivery_attempts"):
                families += self._deliveries(conn)
            if _table_exists(conn, "replication_watermarks"):
                families += self._freshness(conn)
        return families

    # ------------------------------------------------------------------ report_requests
    def _reports(self, conn) -> list[Metric]:
        stats = store.report_stats(conn, DURATION_BUCKETS)
        duration_rows = stats["durations"]
        duration = HistogramMetricFamily(
            "payreports_report_duration_seconds",
            "Generation time of completed reports (completed_at - started_at of the last attempt)",
            labels=["report_type", "format"])
        for row in duration_rows:
            buckets = [(str(float(le)), row[f"le_{le}"]) for le in DURATION_BUCKETS]
            buckets.append(("+Inf", row["n"]))
            duration.add_metric([row["report_type"], row["format"]], buckets, row["total"])

        finished = CounterMetricFamily(
            "payreports_reports_finished", "Reports that reached a final state, by that state",
            labels=["status"])
        exported_rows = CounterMetricFamily(
            "payreports_report_rows_exported", "Rows written into completed reports",
            labels=["report_type", "format"])
        exported_bytes = CounterMetricFamily(
            "payreports_report_bytes_exported", "Bytes of completed report files",
            labels=["report_type", "format"])
        for row in stats["exported"]:
            exported_rows.add_metric([row["report_type"], row["format"]], row["rows"])
            exported_bytes.add_metric([row["report_type"], row["format"]], row["bytes"])

        counts = stats["by_status"]
        for status in ("completed", "failed", "canceled"):
            value = counts.get(status, 0) + (counts.get("expired", 0) if status == "completed" else 0)
            finished.add_metric([status], value)

        failures = CounterMetricFamily(
            "payreports_report_failures", "Failed reports by reason: internal (our fault, "
            "retried by the run before failing) or request (the user must change the request)",
            labels=["reason"])
        reasons = stats["failure_reasons"]
        for reason in ("internal", "request"):
            failures.add_metric([reason], reasons.get(reason, 0))

        queue_depth = GaugeMetricFamily("payreports_reports_queue_depth",
                                        "Report requests waiting for a run (status pending)")
        queue_depth.add_metric([], counts.get("pending", 0))
        running = GaugeMetricFamily("payreports_reports_running",
                                    "Report requests being generated (status processing)")
        running.add_metric([], counts.get("processing", 0))
        oldest = stats["oldest_pending_age_seconds"]
        oldest_pending = GaugeMetricFamily("payreports_reports_oldest_pending_age_seconds",
                                           "Age of the oldest pending request (0 when none)")
        oldest_pending.add_metric([], oldest)
        return [duration, finished, failures, exported_rows, exported_bytes, queue_depth, running,
                oldest_pending]

    # ------------------------------------------------------------------ deliveries
    def _deliveries(self, conn) -> list[Metric]:
        attempts = CounterMetricFamily(
            "payreports_delivery_attempts", "Delivery attempts by channel and outcome",
            labels=["channel", "outcome"])
        for row in conn.execute(
            """
            SELECT d.channel, a.status AS outcome, count(*) AS n
            FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
            GROUP BY 1, 2 ORDER BY 1, 2
            """
        ):
            attempts.add_metric([row["channel"], row["outcome"]], row["n"])
        by_status = GaugeMetricFamily(
            "payreports_deliveries", "Deliveries by channel and status (failed = gave up)",
            labels=["channel", "status"])
        for row in conn.execute(
            "SELECT channel, status, count(*) AS n FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            by_status.add_metric([row["channel"], row["status"]], row["n"])
        return [attempts, by_status]

    # ------------------------------------------------------------------ replication
    def _freshness(self, conn) -> list[Metric]:
        age = GaugeMetricFamily(
            "payreports_replication_watermark_age_seconds",
            "now() minus the replication watermark of each source table: how stale reports are",
            labels=["table"])
        synced = GaugeMetricFamily(
            "payreports_replication_last_sync_timestamp_seconds",
            "Unix time of each table's last successful replication pull", labels=["table"])
        for row in conn.execute(
            """
            SELECT table_name, extract(epoch FROM now() - watermark)::float8 AS age,
                   extract(epoch FROM synced_at)::float8 AS synced
            FROM replication_watermarks ORDER BY table_name
            """
        ):
            age.add_metric([row["table_name"]], row["age"])
            synced.add_metric([row["table_name"]], row["synced"])
        return [age, synced]


def build_registry(settings: Settings | None = None) -> CollectorRegistry:
    """A registry with the app-database collector (and nothing process-specific: every API
    replica must report the same numbers)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AppDatabaseCollector(settings))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def queue_summary(settings: Settings | None = None, window_hours: int = 24) -> dict:
    """What an operator asks first: how many requests wait, run, failed recently, and how long
    the oldest one has been waiting (`payreports ops queue`)."""
    return store.queue_summary(settings or get_settings(), window_hours)
