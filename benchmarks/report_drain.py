"""Draining a burst of small reports through the real sensor/daemon path, with on-demand requests
made during the drain.

Starts (on a private state dir and port, embedded defaults) the demo platform, the API (uvicorn)
and the project's dagster-daemon, queues N small scheduled-priority reports (balance.summary CSV,
spread over the platform's accounts), and while they drain posts one on-demand request through the
API every --on-demand-every seconds. Prints, in one run:
  - small reports drained per second (first queued -> last completed) and Dagster runs created;
  - p50/p95 of the on-demand requests (created -> completed) made during the drain, and of a few
    made one at a time on an idle queue before it;
  - peak RSS of the daemon's process tree (the largest single process, and the tree's total);
  - the baseline measured in the same run: the same batch path (`run_batch`) in this process,
    no Dagster at all — the ceiling the orchestration adds to — and the ratio against it;
  - the ratio against the previous design's 0.68 reports/s (one Dagster run per report, measured
    on this machine with the same report; docs/capacity.md), for orientation only.
Goals: >= 10 small reports/s sustained, on-demand p95 < 5 s during the drain.

    python benchmarks/report_drain.py [--reports 1000] [--launcher warm|default]

`--launcher default` runs the instance with Dagster's DefaultRunLauncher instead of the warm one
(orchestration/launcher.py), to see what the warm run start still buys with batched runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from live_platform import SMALL_REPORT, LivePlatform, RssSampler, percentile, seconds

RATE_GOAL = 10.0
P95_GOAL_SECONDS = 5.0
PREVIOUS_DESIGN_RATE = 0.68  # reports/s, one run per report (docs/capacity.md, issue 13)


def _use_default_launcher(dagster_home: Path) -> None:
    config = dagster_home / "dagster.yaml"
    text = re.sub(r"run_launcher:\n(  .*\n)+", "run_launcher:\n  module: dagster\n"
                  "  class: DefaultRunLauncher\n", config.read_text())
    config.write_text(text)


def queue_small(platform: LivePlatform, n: int) -> list[str]:
    """N small reports queued as the scheduler queues them (source 'schedule'), spread over the
    platform's accounts."""
    from exports.requests import store

    accounts = platform.accounts
    return [store.create(store.NewRequest(
        account_id=accounts[i % len(accounts)], report_type=SMALL_REPORT["report_type"],
        parameters=SMALL_REPORT["parameters"], format="csv", source="schedule"),
        platform.settings)[0]["id"] for i in range(n)]


def batch_baseline(platform: LivePlatform, n: int) -> float:
    """Small reports/s of the same batch path in this process, without Dagster (no sensor, queue,
    run): the ceiling the orchestration adds to."""
    from exports.requests import processing

    queue_small(platform, n)
    started = time.perf_counter()
    baseline = processing.run_batch("baseline", processing.LANES["bulk"], platform.settings)
    rate = baseline.statuses["completed"] / (time.perf_counter() - started)
    assert baseline.statuses["completed"] == n, dict(baseline.statuses)
    return rate


class OnDemandPoster(threading.Thread):
    """Posts SMALL_REPORT through the API every `every` s (cycling over `accounts`, each with its
    own key; default the platform's first); `take()` hands over the ids posted since the last."""

    def __init__(self, platform: LivePlatform, every: float, accounts: list[str] | None = None):
        super().__init__(daemon=True)
        self.platform, self.every = platform, every
        self.accounts = accounts or [None]
        self.ids: list[str] = []
        self.error: Exception | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        posted = 0
        while not self.halt.wait(self.every):
            try:
                self.ids.append(self.platform.post(account_id=self.accounts[posted % len(self.accounts)]))
            except Exception as exc:  # noqa: BLE001 - reported by the benchmark, which then fails
                self.error = exc
                return
            posted += 1

    def take(self) -> list[str]:
        taken, self.ids = self.ids, []
        return taken

    def finish(self) -> list[str]:
        self.halt.set()
        self.join(timeout=60)
        if self.error is not None:
            raise RuntimeError(f"an on-demand request failed: {self.error}") from self.error
        return self.take()


@dataclass
class Drain:
    reports: int
    seconds: float  # first queued -> last completed
    runs: int  # Dagster report runs created meanwhile
    latencies: list[float]  # on-demand requests made meanwhile, created -> completed

    @property
    def rate(self) -> float:
        return self.reports / self.seconds


def drain(platform: LivePlatform, reports: int, poster: OnDemandPoster, timeout: float = 1800) -> Drain:
    """Queue `reports` small reports, start `poster` (on-demand requests; it keeps posting after)
    and wait for the reports; then wait for the on-demand requests posted meanwhile."""
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:
        runs_before = instance.get_runs_count(filters=RunsFilter(job_name="report_job"))
        ids = queue_small(platform, reports)
        poster.start()
        done = platform.wait_finished(ids, timeout=timeout)
        on_demand_ids = poster.take()
        on_demand_done = platform.wait_finished(on_demand_ids)
        runs = instance.get_runs_count(filters=RunsFilter(job_name="report_job")) - runs_before
    first_created = min(row["created_at"] for row in done.values())
    last_completed = max(row["completed_at"] for row in done.values())
    return Drain(reports, (last_completed - first_created).total_seconds(), runs,
                 [seconds(row) for row in on_demand_done.values()])


def drain_lines(result: Drain, baseline_rate: float) -> list[str]:
    """The drain's rate, runs and on-demand latencies with their goals, as printed."""
    rate, latencies = result.rate, result.latencies
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    return [
        f"drain of {result.reports} small reports (first queued -> last completed): {result.seconds:.1f} s = "
        f"{rate:.1f} reports/s (goal {RATE_GOAL:.0f}: {'MET' if rate >= RATE_GOAL else 'MISSED'}; "
        f"{rate / baseline_rate:.2f}x the in-process baseline; "
        f"{rate / PREVIOUS_DESIGN_RATE:.0f}x the one-run-per-report design's {PREVIOUS_DESIGN_RATE})",
        f"Dagster report runs created during the drain: {result.runs} "
        f"({(result.reports + len(latencies)) / max(result.runs, 1):.0f} requests per run)",
        f"on-demand during the drain: {len(latencies)} requests, p50 {p50:.2f} s, p95 {p95:.2f} s "
        f"(goal p95 < {P95_GOAL_SECONDS:.0f} s: {'MET' if p95 < P95_GOAL_SECONDS else 'MISSED'})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--baseline-reports", type=int, default=100)
    parser.add_argument("--on-demand-every", type=float, default=1.0)
    parser.add_argument("--idle-requests", type=int, default=10,
                        help="on-demand requests made one at a time (2 s apart) before the drain")
    parser.add_argument("--launcher", choices=("warm", "default"), default="warm")
    args = parser.parse_args()

    platform = LivePlatform("payreports-drain-", {
        "PAYREPORTS_API_RATE_BURST": "100000",
        "PAYREPORTS_MAX_PENDING_PER_ACCOUNT": str(args.reports * 10)})
    with platform:
        accounts = platform.accounts
        baseline_rate = batch_baseline(platform, args.baseline_reports)

        platform.start_services(_use_default_launcher if args.launcher == "default" else None)
        rss = RssSampler(platform.daemon.pid)
        rss.start()
        # Warm-up: the daemon's first sensor tick and code-server start are not steady state.
        platform.wait_finished([platform.post()], timeout=300)
        idle = []
        for _ in range(args.idle_requests):  # nothing else queued: each needs a run of its own
            idle.append(seconds(next(iter(platform.wait_finished([platform.post()]).values()))))
            time.sleep(2)
        poster = OnDemandPoster(platform, args.on_demand_every)
        result = drain(platform, args.reports, poster)
        poster.finish()
        rss.stop.set()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, launcher {args.launcher}, "
          f"{len(accounts)} accounts, load average at the end {load} ({os.cpu_count()} cores)")
    print(f"baseline (run_batch in-process, no Dagster): {baseline_rate:.1f} reports/s")
    for line in drain_lines(result, baseline_rate):
        print(line)
    if idle:
        print(f"on-demand on an idle queue ({len(idle)} requests, one at a time): p50 "
              f"{statistics.median(idle):.2f} s, p95 {percentile(idle, 0.95):.2f} s")
    print(f"peak RSS: largest process {rss.peak_single / 2**20:.0f} MB, daemon tree "
          f"{rss.peak_total / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
