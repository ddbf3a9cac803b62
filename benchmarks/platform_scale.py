"""Issue 13's acceptance in one run: a generated platform of N accounts (default 10,000) drains a
burst of small reports, then renders the month-end statements of every account through the
running dagster-daemon, with on-demand API requests made throughout.

On a private state dir and port (embedded defaults: embedded Postgres, chdb, local files, an SMTP
catcher), in this order:
  1. set-up: generate_platform(accounts=N, a few payments each, 60 days to 2026-11-01),
     replication, dbt build of the marts (each timed);
  2. baselines, in this process: small reports/s of the batch path without Dagster (run_batch, as
     benchmarks/report_drain.py), and seconds per statement pack of the engine alone for a sample
     of accounts (as benchmarks/statements.py);
  3. the project's dagster-daemon and the API (uvicorn) start; one warm-up request;
  4. drain: --reports small balance.summary CSVs (October 2026) queued as the scheduler queues
     them, spread over the accounts, while one on-demand request is posted through the API every
     --on-demand-every s (cycling over 10 accounts, each with its own API key): rate, ratio to
     the baseline, Dagster report runs created, on-demand p50/p95;
  5. statements: October 2026 for every account, submitted as `payreports ops backfill --from
     2026-10 --to 2026-10` submits it (orchestration.backfills, a Dagster partition backfill on
     the daemon's instance, which runs it), on-demand requests still posted; waited for until
     every pack's files (report_requests rows, source 'statement') are completed or failed:
     packs, files by status, end-to-end and per-pack seconds, ratio to the engine alone, the time
     10,000 packs take at that rate, Dagster runs, on-demand p50/p95, emails delivered;
  6. a progress line every --sample-seconds (files completed, rate, load, largest process RSS);
  7. the engine-alone baseline again, once the statements are done (this VM's speed drifts
     within a run; the ratio is printed against both ends);
  8. peak RSS over the run: the platform's largest single process (daemon tree or API), the
     daemon's process tree in total, and apart from them the benchmark's own process.
Goals (2 cores, embedded defaults): >= 10 small reports/s, on-demand p95 < 5 s during the drain,
10,000 packs in <= 60 min. Exits 1 when any request failed or was stuck, or a run of the
backfill did not succeed (after printing).

The month-end sensor is stopped before the daemon starts: the wall clock's newest closed month
is past the generated data, and the sensor would render it for every account as well. So are
the daily platform refresh and the hourly freshness check, which otherwise fall into some runs
and not others (a refresh at 10,000 accounts halved the statements' rate for a minute).

    nice -n 19 python benchmarks/platform_scale.py --accounts 100 --reports 200   # a quick look
    python benchmarks/platform_scale.py                                            # 10,000 accounts
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from live_platform import (REPO, GeneratedPlatform, LivePlatform, RssSampler, pdf_font_subsetter,
                           percentile, seconds)
from report_drain import P95_GOAL_SECONDS, OnDemandPoster, batch_baseline, drain, drain_lines
from statements import GOAL_PACKS, GOAL_SECONDS, PERIOD_KEY
from statements import baseline as engine_baseline

MONTH = PERIOD_KEY[:7]
ON_DEMAND_ACCOUNTS = 10
BACKFILL_TAG = "dagster/backfill"  # what Dagster tags a backfill's runs with
STUCK_SECONDS = 15 * 60  # no statement file finished for this long: the benchmark fails


# What the wall clock starts: (kind, name, code location). Stopped so that every run measures
# the same work whatever the time of day (the generated source does not change meanwhile).
WALL_CLOCK_AUTOMATION = (
    ("sensor", "statements_month_end_sensor", "reports"),
    ("schedule", "platform_refresh_daily", "platform"),
    ("schedule", "marts_freshness_hourly", "platform"),
)


def stop_wall_clock_automation(dagster_home: Path) -> None:
    """`dagster sensor|schedule stop` on the daemon's instance, before the daemon starts."""
    del dagster_home  # prepare_dagster_home exported DAGSTER_HOME for this process already
    for kind, name, location in WALL_CLOCK_AUTOMATION:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), kind, "stop", name,
             "-w", str(REPO / "workspace.yaml"), "-l", location],
            cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise SystemExit(f"could not stop the {kind} {name}:\n{result.stdout}{result.stderr}")


def request_counts(settings) -> Counter:
    """(source, status) -> report_requests rows."""
    from exports import db

    with db.connect("app", settings) as conn:
        return Counter({(source, status): n for source, status, n in conn.execute(
            "SELECT source, status, count(*) FROM report_requests GROUP BY 1, 2")})


class Progress(threading.Thread):
    """Every `every` s: the current phase's files completed (and failed), their rate, the load
    average and the largest process' RSS now."""

    def __init__(self, settings, every: float, rss: RssSampler):
        super().__init__(daemon=True)
        self.settings, self.every, self.rss = settings, every, rss
        self.halt = threading.Event()
        self.phase: tuple[str, str, float, Counter] | None = None  # name, source, start, counts then

    def begin(self, name: str, source: str) -> None:
        self.phase = (name, source, time.perf_counter(), request_counts(self.settings))

    def run(self) -> None:
        while not self.halt.wait(self.every):
            if self.phase is None:
                continue
            name, source, started, before = self.phase
            try:
                now = request_counts(self.settings)
            except Exception:  # noqa: BLE001 - a sample missed is no reason to stop the benchmark
                continue
            done = now[(source, "completed")] - before[(source, "completed")]
            failed = now[(source, "failed")] - before[(source, "failed")]
            elapsed = time.perf_counter() - started
            print(f"  [{name} {elapsed:6.0f} s] {done:,} {source} files completed, {failed:,} failed "
                  f"({done / max(elapsed, 1e-9):.2f}/s); load {os.getloadavg()[0]:.1f}; largest process "
                  f"RSS {self.rss.current_single / 2**20:.0f} MB", flush=True)


def statement_rows(settings, files_per_pack: int) -> tuple[Counter, int, datetime | None]:
    """Statement files by status, packs with every file completed, the last completion."""
    from exports import db

    with db.connect("app", settings) as conn:
        statuses = Counter(dict(conn.execute(
            "SELECT status, count(*) FROM report_requests WHERE source = 'statement' GROUP BY 1")))
        packs = conn.execute(
            "SELECT count(*) FROM (SELECT account_id FROM report_requests WHERE source = 'statement' "
            "GROUP BY account_id HAVING count(*) FILTER (WHERE status = 'completed') = %s) complete",
            (files_per_pack,)).fetchone()[0]
        last = conn.execute("SELECT max(completed_at) FROM report_requests "
                            "WHERE source = 'statement'").fetchone()[0]
    return statuses, packs, last


def statement_problems(backfill_status: str, run_statuses: Counter, statuses: Counter, packs: int,
                       owed: int, files_per_pack: int) -> list[str]:
    """Why the statements phase did not do its job (empty: every pack complete, every run of the
    backfill succeeded: a failed one that Dagster retried still means something went wrong)."""
    problems = []
    if backfill_status != "COMPLETED_SUCCESS":
        problems.append(f"the backfill ended {backfill_status}")
    unsuccessful = {s: n for s, n in run_statuses.items() if s != "SUCCESS" and n}
    if unsuccessful:
        problems.append(f"backfill runs not successful: {unsuccessful}")
    unfinished = {s: n for s, n in statuses.items() if s != "completed" and n}
    if unfinished:
        problems.append(f"statement files not completed: {unfinished}")
    if packs != owed:
        problems.append(f"{packs:,} of {owed:,} accounts' packs complete")
    if statuses["completed"] != owed * files_per_pack:
        problems.append(f"{statuses['completed']:,} statement files completed, expected "
                        f"{owed * files_per_pack:,} ({owed:,} packs of {files_per_pack})")
    return problems


def run_statements(platform: LivePlatform, timeout: float) -> dict:
    """Submit the month's statements backfill on the daemon's instance and wait until the daemon
    has finished it and no statement file is pending or processing."""
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)  # the asset's backfill_policy
    from exports.statements.accounts import accounts_owed, list_accounts
    from exports.statements.items import statement_set
    from exports.statements.periods import StatementPeriod
    from orchestration.backfills import backfill_status, plan_backfill, submit_backfill

    settings = platform.settings
    owed = len(accounts_owed(list_accounts(settings), StatementPeriod.from_key(PERIOD_KEY)))
    files_per_pack = len(statement_set(settings))
    with dg.DagsterInstance.get() as instance:
        report_runs_before = instance.get_runs_count(filters=dg.RunsFilter(job_name="report_job"))
        submitted_at = datetime.now(timezone.utc)
        backfill = submit_backfill(instance, plan_backfill(MONTH, MONTH))
        deadline = time.monotonic() + timeout
        last_change, seen = time.monotonic(), None
        while True:
            status, finished = backfill_status(instance, backfill.backfill_id)
            statuses, packs, last = statement_rows(settings, files_per_pack)
            unfinished = statuses["pending"] + statuses["processing"]
            if finished and not unfinished:
                break
            if (statuses["completed"], statuses["failed"]) != seen:
                seen, last_change = (statuses["completed"], statuses["failed"]), time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - last_change > STUCK_SECONDS:
                raise TimeoutError(f"statements not finished: backfill {status}, files {dict(statuses)}")
            time.sleep(2)
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: backfill.backfill_id}))
        report_runs = (instance.get_runs_count(filters=dg.RunsFilter(job_name="report_job"))
                       - report_runs_before)
    return {"backfill": backfill, "status": status, "owed": owed, "files_per_pack": files_per_pack,
            "statuses": statuses, "packs": packs, "partitions": backfill.partitions,
            "submitted_at": submitted_at, "last_completed": last,
            "seconds": (last - submitted_at).total_seconds() if last else float("nan"),
            "runs": Counter(run.status.value for run in runs), "report_runs": report_runs}


def p50_p95(latencies: list[float]) -> str:
    if not latencies:
        return "no requests"
    return (f"{len(latencies)} requests, p50 {statistics.median(latencies):.2f} s, "
            f"p95 {percentile(latencies, 0.95):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=1000, help="small reports in the drain")
    parser.add_argument("--on-demand-every", type=float, default=1.0,
                        help="seconds between on-demand API requests (drain and statements)")
    parser.add_argument("--sample-seconds", type=float, default=60.0,
                        help="how often a progress line is printed")
    args = parser.parse_args()
    # A plain `kill` ends the run like Ctrl-C: every service started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from aiosmtpd.controller import Controller

    from tests.fixtures.services import free_port
    from tests.fixtures.smtp import CollectingHandler

    smtp_handler = CollectingHandler()
    smtp = Controller(smtp_handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    generated = GeneratedPlatform(args.accounts)
    platform = LivePlatform("payreports-scale-", {
        "PAYREPORTS_API_RATE_BURST": "100000",
        "PAYREPORTS_MAX_PENDING_PER_ACCOUNT": str(args.reports * 10),
        "PAYREPORTS_SMTP_HOST": "127.0.0.1", "PAYREPORTS_SMTP_PORT": str(smtp.port)}, build=generated)
    load_start = os.getloadavg()
    finished = False
    try:
        with platform:
            settings = platform.settings
            steps = ", ".join(f"{step} {s:.0f} s" for step, s in generated.timings.items())
            print(f"set-up: {args.accounts:,} accounts, {args.accounts * generated.payments_per_account:,} "
                  f"payments: {steps} (total {sum(generated.timings.values()):.0f} s); "
                  f"{pdf_font_subsetter()}", flush=True)

            batch_rate = batch_baseline(platform, 100)
            print(f"baseline (run_batch in-process, no Dagster): {batch_rate:.1f} small reports/s",
                  flush=True)
            from exports import db

            with db.connect("source", settings) as conn:
                sample = conn.execute("SELECT id, timezone FROM accounts ORDER BY id LIMIT 10").fetchall()
            (platform.state / "baseline").mkdir()
            pack_seconds = engine_baseline(settings, sample, platform.state / "baseline")
            print(f"baseline (engine alone, shared client): {pack_seconds:.3f} s per statement pack "
                  f"(median of {len(sample)})", flush=True)

            started = time.perf_counter()
            platform.start_services(stop_wall_clock_automation)
            rss = RssSampler(platform.daemon.pid, {"API": platform.api.pid})
            rss.start()
            platform.wait_finished([platform.post()], timeout=300)
            print(f"services: daemon + API started, the wall clock's sensor and schedules stopped, "
                  f"warm-up request done in {time.perf_counter() - started:.0f} s", flush=True)
            progress = Progress(settings, args.sample_seconds, rss)
            progress.start()

            poster = OnDemandPoster(platform, args.on_demand_every, platform.accounts[:ON_DEMAND_ACCOUNTS])
            progress.begin("drain", "schedule")
            print(f"drain: {args.reports:,} small reports queued over "
                  f"{min(args.reports, len(platform.accounts)):,} accounts ...", flush=True)
            drained = drain(platform, args.reports, poster)
            for line in drain_lines(drained, batch_rate):
                print(line, flush=True)

            between = poster.take()  # posted after the drain's end: waited for, not counted
            progress.begin("statements", "statement")
            print(f"statements: backfill of {MONTH} for every account submitted to the daemon's "
                  "instance ...", flush=True)
            emails_before = len(smtp_handler.envelopes)
            try:
                result = run_statements(platform, timeout=max(1800.0, args.accounts * 1.0))
            finally:
                on_demand_ids = poster.finish()
            on_demand = platform.wait_finished(on_demand_ids, timeout=600)
            platform.wait_finished(between, timeout=600)
            emails = len(smtp_handler.envelopes) - emails_before
            smtp_connections = len(set(smtp_handler.peers[emails_before:]))
            progress.halt.set()
            rss.stop.set()
            # This VM's speed drifts within a run: the same start baseline has come with month-ends
            # ~20% apart. Measured again once the statements are done (the services idle), a
            # ratio can be read against both ends.
            (platform.state / "baseline-end").mkdir()
            pack_seconds_end = engine_baseline(settings, sample, platform.state / "baseline-end")
        finished = True
    finally:
        smtp.stop()
        if finished:
            shutil.rmtree(platform.state, ignore_errors=True)
        else:  # its daemon.log and api.log say what went wrong
            print(f"state (logs) kept in {platform.state}", file=sys.stderr)

    packs, statuses, e2e = result["packs"], result["statuses"], result["seconds"]
    per_pack = e2e / max(packs, 1)
    projected = per_pack * GOAL_PACKS
    # Those made while statement files were still being rendered (not in the tail in which the
    # daemon's backfill loop notices the backfill has finished).
    latencies = [seconds(row) for row in on_demand.values()
                 if result["last_completed"] is None or row["created_at"] <= result["last_completed"]]
    backfill = result["backfill"]
    print(f"statements of {MONTH}: backfill {backfill.backfill_id} {result['status']}, "
          f"{result['partitions']} partitions; {packs:,} of {result['owed']:,} accounts' packs completed; "
          f"files by status {dict(sorted(statuses.items()))}")
    print(f"end to end (backfill submitted -> last file completed): {e2e:.1f} s = "
          f"{per_pack:.3f} s per pack, {per_pack / pack_seconds:.2f}x the engine alone at the start, "
          f"{per_pack / pack_seconds_end:.2f}x at the end ({pack_seconds_end:.3f} s per pack, "
          f"the services idle)")
    print(f"{GOAL_PACKS:,} packs at this rate: {projected / 60:.1f} min "
          f"(goal <= {GOAL_SECONDS // 60} min: {'met' if projected <= GOAL_SECONDS else 'NOT met'})"
          + ("" if packs >= GOAL_PACKS else f"  [extrapolated from {packs:,} packs]"))
    print(f"Dagster runs of the backfill: {sum(result['runs'].values())} "
          f"({', '.join(f'{n} {s}' for s, n in sorted(result['runs'].items()))}); report runs "
          f"meanwhile: {result['report_runs']}")
    print(f"on-demand during the statements (made before the last file completed): {p50_p95(latencies)}")
    print(f"emails delivered during the statements: {emails:,} over {smtp_connections:,} SMTP connections")
    # The benchmark's own process (the in-process baselines, its bookkeeping of every request) is
    # not part of the product: printed apart, not as the product's largest process.
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak RSS over the run: largest process of the platform {rss.peak_single / 2**20:.0f} MB "
          f"({rss.peak_single_name}); daemon tree total {rss.peak_total / 2**20:.0f} MB (daemon, "
          f"code servers, runs); the benchmark's own process {self_peak / 2**20:.0f} MB")
    load_end = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {args.accounts:,} accounts, "
          f"{os.cpu_count()} cores, load average at the start {load_start[0]:.1f}, at the end {load_end}")

    problems = statement_problems(result["status"], result["runs"], statuses, packs, result["owed"],
                                  result["files_per_pack"])
    if problems:
        raise SystemExit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/runtime-0")
    main()
